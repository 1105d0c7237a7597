// /dashboard: the report endpoints drawn as charts, each with its numbers in a table (which
// is also what screen readers and the tests read), for a chosen period, refreshed on a timer.

import { api, describe, el, format, say, startPage, table } from "./console.js";

const REFRESH_SECONDS = 30;
const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const Chart = window.Chart;
Chart.defaults.animation = false; // numbers, not motion: a refresh redraws at once
Chart.defaults.font.family = "system-ui, sans-serif";
Chart.defaults.maintainAspectRatio = false;

const charts = new Map(); // figure id → its Chart, updated in place on every refresh

/** Draws (or redraws) the chart in figure `id` with `config`; `summary` is what a screen reader says. */
function draw(id, config, summary) {
  document.querySelector(`#${id} canvas`).setAttribute("aria-label", summary);
  const existing = charts.get(id);
  if (existing && existing.config.type === config.type) {
    existing.data = config.data;
    existing.options = config.options || {};
    existing.update();
    return;
  }
  if (existing) existing.destroy();
  const canvas = document.querySelector(`#${id} canvas`);
  charts.set(id, new Chart(canvas, config));
}

function setData(id, ...nodes) {
  document.querySelector(`#${id} .data`).replaceChildren(...nodes);
}

function showFailure(id, error) {
  setData(id, el("p", { class: "error", role: "alert" }, describe(error)));
}

function drawSources(answer) {
  const bySource = answer.by_source || [];
  draw("sources", {
    type: "pie",
    data: {
      labels: bySource.map((r) => r.source),
      datasets: [{ label: "Leads", data: bySource.map((r) => r.count), backgroundColor: PALETTE }],
    },
    options: { plugins: { legend: { position: "right" } } },
  }, `Leads by source: ${bySource.map((r) => `${r.source} ${r.count}`).join(", ") || "none"}`);
  setData(
    "sources",
    table(
      `Leads by source and channel (${format.count(answer.total)} in all)`,
      ["Source", "Channel", "Leads", "Share"],
      answer.rows.map((r) => [r.source, r.channel, format.count(r.count), format.percent(r.share)]),
    ),
  );
}

function drawFunnel(answer) {
  const rows = answer.rows;
  draw("funnel", {
    type: "bar",
    data: {
      labels: rows.map((r) => `${r.stage} (${format.percent(r.step_rate)})`),
      datasets: [{ label: "Leads", data: rows.map((r) => r.count), backgroundColor: PALETTE[0] }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  }, `Funnel: ${rows.map((r) => `${r.stage} ${r.count}`).join(", ")}`);
  setData(
    "funnel",
    table(
      `Leads that reached each stage (of ${format.count(answer.captured)} captured)`,
      ["Stage", "Leads", "Step rate"],
      rows.map((r) => [r.stage, format.count(r.count), format.percent(r.step_rate)]),
    ),
  );
}

function drawCampaignRoi(answer) {
  const rows = answer.rows;
  const periods = [...new Set(rows.map((r) => r.period_start))].sort();
  const campaigns = [...new Set(rows.map((r) => r.campaign_id))].sort();
  draw("campaign-roi", {
    type: "line",
    data: {
      labels: periods.map((p) => p.slice(0, 10)),
      datasets: campaigns.map((campaign, i) => ({
        label: campaign,
        data: periods.map((p) => {
          const row = rows.find((r) => r.campaign_id === campaign && r.period_start === p);
          return row && row.roi !== null ? Number(row.roi) : null;
        }),
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        spanGaps: true,
        pointRadius: 5,
      })),
    },
    options: { scales: { x: { offset: true }, y: { title: { display: true, text: "ROI" } } } },
  }, `ROI per campaign and period: ${rows.map((r) => `${r.campaign_id} ${r.period_start} ${format.ratio(r.roi)}`).join(", ") || "none"}`);
  setData(
    "campaign-roi",
    table(
      `Spend, first-touch revenue and ROI per campaign and ${answer.interval || "period"}`,
      ["Campaign", "Period from", "Spend", "Revenue", "ROI"],
      rows.map((r) => [
        r.campaign_id,
        String(r.period_start).slice(0, 10),
        format.money(r.spend),
        format.money(r.revenue),
        format.ratio(r.roi),
      ]),
    ),
    table(
      "Per campaign over the whole period",
      ["Campaign", "Spend", "Revenue", "ROI"],
      (answer.totals || []).map((t) => [t.campaign_id, format.money(t.spend), format.money(t.revenue), format.ratio(t.roi)]),
    ),
  );
}

function drawLeaderboard(answer) {
  const reps = answer.rows.filter((r) => r.level === "rep");
  draw("leaderboard", {
    type: "bar",
    data: {
      labels: reps.map((r) => r.id),
      datasets: [
        { label: "Won amount", data: reps.map((r) => Number(r.won_amount)), backgroundColor: PALETTE[1] },
      ],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  }, `Won amount per rep: ${reps.map((r) => `${r.id} ${format.money(r.won_amount)}`).join(", ") || "none"}`);
  setData(
    "leaderboard",
    table(
      "Won deals per rep and team",
      ["Rank", "Level", "Rep or team", "Team", "Won", "Won amount"],
      answer.rows.map((r) => [
        String(r.rank),
        r.level,
        r.id,
        r.team,
        format.count(r.won_count),
        format.money(r.won_amount),
      ]),
    ),
  );
}

function drawFollowUpEfficiency(answer) {
  setData(
    "follow-up-efficiency",
    table(
      "First response and follow-ups per rep and team",
      ["Level", "Rep or team", "Team", "Leads", "Avg first response", "Avg follow-ups", "Within SLA", "Reclaimed"],
      answer.rows.map((r) => [
        r.level,
        r.id,
        r.team,
        format.count(r.leads),
        format.duration(r.avg_first_response_seconds),
        format.ratio(r.avg_followups_per_lead),
        format.percent(r.within_sla_share),
        format.count(r.reclaimed),
      ]),
    ),
  );
}

function drawKpis(answer) {
  const kpi = answer.rows[0] || {};
  const tiles = [
    ["CAC", format.money(kpi.cac), "spend per new customer"],
    ["LTV", format.money(kpi.ltv), "revenue per customer"],
    ["LTV:CAC", format.ratio(kpi.ltv_to_cac), ""],
    ["MQL → SQL", format.percent(kpi.mql_to_sql_rate), ""],
    ["Marketing ROI", format.ratio(kpi.marketing_roi), "(revenue − spend) / spend"],
  ];
  document.getElementById("kpis").replaceChildren(
    ...tiles.map(([name, value, hint]) =>
      el("div", { class: "tile" }, el("dt", {}, name), el("dd", { title: hint }, value)),
    ),
  );
}

function drawExperiments(answer) {
  setData(
    "experiments",
    table(
      `Experiments: ${answer.metric || "won"} per variant (each against the first)`,
      ["Experiment", "Variant", "Leads", "Converted", "Rate (95% CI)", "Lift", "p-value", "Difference (95% CI)"],
      answer.rows.map((r) => [
        r.experiment,
        r.variant,
        format.count(r.n),
        format.count(r.conversions),
        `${format.percent(r.rate)} (${format.percent(r.rate_ci_low)}–${format.percent(r.rate_ci_high)})`,
        format.percent(r.lift),
        format.pValue(r.p_value),
        r.diff_ci_low === null || r.diff_ci_low === undefined
          ? "—"
          : `${format.percent(r.diff_ci_low)} to ${format.percent(r.diff_ci_high)}`,
      ]),
      { empty: "No experiment has assigned a variant in this period." },
    ),
  );
}

const REPORTS = [
  { id: "kpis", report: "kpis", draw: drawKpis },
  { id: "sources", report: "sources", draw: drawSources },
  { id: "funnel", report: "funnel", draw: drawFunnel },
  { id: "campaign-roi", report: "campaign-roi", draw: drawCampaignRoi, extra: () => ({ interval: value("interval") }) },
  { id: "leaderboard", report: "leaderboard", draw: drawLeaderboard },
  { id: "follow-up-efficiency", report: "follow-up-efficiency", draw: drawFollowUpEfficiency },
  { id: "experiments", report: "experiments", draw: drawExperiments, extra: () => ({ metric: value("metric") }) },
];

function value(id) {
  return document.getElementById(id).value;
}

function isoDay(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 10);
}

/** The chosen days as instants: from the start of `from` to the start of the day after `to`. */
function period() {
  const from = new Date(`${value("from")}T00:00:00`);
  const to = new Date(`${value("to")}T00:00:00`);
  to.setDate(to.getDate() + 1);
  return { from: from.toISOString(), to: to.toISOString() };
}

async function refresh() {
  const status = document.getElementById("updated");
  if (!value("from") || !value("to")) return;
  const range = period();
  const results = await Promise.all(
    REPORTS.map(async (spec) => {
      try {
        const answer = await api(`/v1/reports/${spec.report}`, {
          query: { ...range, ...(spec.extra ? spec.extra() : {}) },
        });
        spec.draw(answer);
        return true;
      } catch (error) {
        if (spec.id === "kpis") document.getElementById("kpis").replaceChildren(el("p", { class: "error" }, describe(error)));
        else showFailure(spec.id, error);
        return false;
      }
    }),
  );
  const failed = results.filter((ok) => !ok).length;
  say(
    status,
    failed ? `${failed} report(s) failed to load; see their panels.` : `Updated ${new Date().toLocaleTimeString("sv-SE")}`,
    failed ? "error" : "info",
  );
}

let timer = null;

function schedule() {
  clearInterval(timer);
  timer = null;
  if (document.getElementById("auto-refresh").checked) {
    timer = setInterval(() => {
      // Not while the tab is hidden, nor while the key is being asked for again.
      if (document.visibilityState === "visible" && !document.getElementById("main").hidden) refresh();
    }, REFRESH_SECONDS * 1000);
  }
}

startPage(() => {
  const today = new Date();
  const monthAgo = new Date(today);
  monthAgo.setDate(today.getDate() - 29);
  document.getElementById("from").value = isoDay(monthAgo);
  document.getElementById("to").value = isoDay(today);
  document.getElementById("range").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  for (const id of ["interval", "metric"]) document.getElementById(id).addEventListener("change", refresh);
  document.getElementById("auto-refresh").addEventListener("change", schedule);
  schedule();
  refresh();
});
