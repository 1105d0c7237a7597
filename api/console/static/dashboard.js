// /dashboard: the report endpoints drawn as charts, each with its numbers in a table (which
// is also what screen readers and the tests read), for a chosen period of days in the
// user's time zone, refreshed on a timer. Every figure says what it means: the server's
// definitions (GET /v1/reports/definitions) as a tooltip on hover and focus, and as a
// footnote list under the charts. Words come from the `dashboard` catalogs (i18n.js).

import { api, describe, el, say, startPage, table } from "./console.js";
import { fmt, locale, t, timeZone } from "./i18n.js";

const REFRESH_SECONDS = 30;
const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const Chart = window.Chart;
Chart.defaults.animation = false; // numbers, not motion: a refresh redraws at once
// The page's own font stack (with its CJK fonts), so Chinese labels in charts render too.
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.maintainAspectRatio = false;

const charts = new Map(); // figure id → its Chart, updated in place on every refresh
// What the server says each number means, and the currency its amounts are in.
let meaning = { reports: {}, currency: "CNY" };
// Per report, "key" → [name, definition], in the order first shown: the footnote list.
const footnotes = new Map();
const TITLES = {
  kpis: "dashboard.kpis.title",
  sources: "dashboard.sources.title",
  funnel: "dashboard.funnel.title",
  "campaign-roi": "dashboard.roi.title",
  leaderboard: "dashboard.leaderboard.title",
  "follow-up-efficiency": "dashboard.efficiency.title",
  experiments: "dashboard.experiments.title",
};
let tips = 0;

/** The definition of `report`'s `key` in the chosen language (English if it has none). */
function definition(report, key) {
  const entry = (meaning.reports[report] || {})[key];
  return entry ? entry[locale] || entry.en : "";
}

/** `name` with its definition: a button that shows it as a tooltip on hover and focus (and
 * to screen readers as its description), and an entry in the footnote list. */
function term(name, report, key) {
  const text = definition(report, key);
  if (!text) return name;
  if (!footnotes.has(report)) footnotes.set(report, new Map());
  footnotes.get(report).set(key, [name, text]);
  const id = `tip-${++tips}`;
  const tip = el("span", { class: "tip", role: "tooltip", id }, text);
  const show = () => requestAnimationFrame(() => fit(tip));
  return el(
    "span",
    { class: "term", onmouseenter: show, onfocusin: show },
    name,
    el("button", { type: "button", class: "define", "aria-label": t("dashboard.definition.show", { name }), "aria-describedby": id }, "?"),
    tip,
  );
}

/** Opens `tip` towards the start of the line when it would leave the window at its end. */
function fit(tip) {
  tip.classList.remove("flip");
  const box = tip.getBoundingClientRect();
  if (box.right > document.documentElement.clientWidth - 8) tip.classList.add("flip");
}

function showFootnotes() {
  document.getElementById("definitions-intro").textContent = t("dashboard.definitions.intro", { zone: timeZone() });
  document.getElementById("definitions-list").replaceChildren(
    ...Object.keys(TITLES)
      .filter((report) => footnotes.has(report))
      .map((report) =>
        el(
          "section",
          { class: "report-definitions" },
          el("h3", {}, t(TITLES[report])),
          el("dl", {}, [...footnotes.get(report).values()].flatMap(([name, text]) => [el("dt", {}, name), el("dd", {}, text)])),
        ),
      ),
  );
}

const money = (amount) => fmt.money(amount, meaning.currency);
// Large amounts on a tile read better in 万 in Chinese (¥120万); tables keep every digit.
const tileMoney = (amount) =>
  fmt.money(amount, meaning.currency, { compact: locale === "zh-CN" && Math.abs(Number(amount)) >= 10000 });
const ratio = (n) => fmt.decimal(n, 2);

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
  for (const node of nodes) if (node.tHead) labelCells(node);
  document.querySelector(`#${id} .data`).replaceChildren(...nodes);
}

/** Labels each cell with its column's name alone (a header with a definition would lend
 * the cell its whole text, definition included, where phones show tables as cards). */
function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((th) => {
    const named = th.querySelector(".term");
    return named ? named.firstChild.textContent : th.textContent;
  });
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((cell, i) => {
      if (cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[i] ?? "");
    });
  }
}

function showFailure(id, error) {
  setData(id, el("p", { class: "error", role: "alert" }, describe(error)));
}

const listed = (items) => items.join(", ") || t("dashboard.none");

function drawSources(answer) {
  const bySource = answer.by_source || [];
  draw("sources", {
    type: "pie",
    data: {
      labels: bySource.map((r) => r.source),
      datasets: [{ label: t("dashboard.chart.leads"), data: bySource.map((r) => r.count), backgroundColor: PALETTE }],
    },
    options: { plugins: { legend: { position: "right" } } },
  }, t("dashboard.sources.summary", { list: listed(bySource.map((r) => `${r.source} ${r.count}`)) }));
  setData(
    "sources",
    table(
      t("dashboard.sources.caption", { total: fmt.count(answer.total) }),
      [
        t("dashboard.sources.source"),
        t("dashboard.sources.channel"),
        term(t("dashboard.sources.count"), "sources", "count"),
        term(t("dashboard.sources.share"), "sources", "share"),
      ],
      answer.rows.map((r) => [r.source, r.channel, fmt.count(r.count), fmt.percent(r.share)]),
    ),
  );
}

function drawFunnel(answer) {
  const rows = answer.rows;
  const stage = (r) => t(`dashboard.stage.${r.stage}`);
  draw("funnel", {
    type: "bar",
    data: {
      labels: rows.map((r) => `${stage(r)} (${fmt.percent(r.step_rate)})`),
      datasets: [{ label: t("dashboard.chart.leads"), data: rows.map((r) => r.count), backgroundColor: PALETTE[0] }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  }, t("dashboard.funnel.summary", { list: listed(rows.map((r) => `${stage(r)} ${r.count}`)) }));
  setData(
    "funnel",
    table(
      t("dashboard.funnel.caption", { captured: fmt.count(answer.captured) }),
      [t("dashboard.funnel.stage"), term(t("dashboard.funnel.count"), "funnel", "count"), term(t("dashboard.funnel.step_rate"), "funnel", "step_rate")],
      rows.map((r) => [stage(r), fmt.count(r.count), fmt.percent(r.step_rate)]),
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
      labels: periods,
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
    options: { scales: { x: { offset: true }, y: { title: { display: true, text: t("dashboard.roi.axis") } } } },
  }, t("dashboard.roi.summary", { list: listed(rows.map((r) => `${r.campaign_id} ${r.period_start} ${ratio(r.roi)}`)) }));
  const amounts = () => [
    term(t("dashboard.roi.spend"), "campaign-roi", "spend"),
    term(t("dashboard.roi.revenue"), "campaign-roi", "revenue"),
    term(t("dashboard.roi.roi"), "campaign-roi", "roi"),
  ];
  const overall = answer.overall;
  const totals = (answer.totals || []).map((r) => [r.campaign_id, money(r.spend), money(r.revenue), ratio(r.roi)]);
  if (overall) {
    totals.push([term(t("dashboard.roi.overall"), "campaign-roi", "overall"), money(overall.spend), money(overall.revenue), ratio(overall.roi)]);
  }
  setData(
    "campaign-roi",
    table(
      t(answer.interval === "week" ? "dashboard.roi.caption.week" : "dashboard.roi.caption.month"),
      [t("dashboard.roi.campaign"), t("dashboard.roi.period"), ...amounts()],
      rows.map((r) => [r.campaign_id, r.period_start, money(r.spend), money(r.revenue), ratio(r.roi)]),
    ),
    table(t("dashboard.roi.totalsCaption"), [t("dashboard.roi.campaign"), ...amounts()], totals),
  );
  const last = document.querySelector("#campaign-roi table:last-of-type tbody tr:last-child");
  if (overall && last) last.classList.add("overall");
}

function drawLeaderboard(answer) {
  const reps = answer.rows.filter((r) => r.level === "rep");
  draw("leaderboard", {
    type: "bar",
    data: {
      labels: reps.map((r) => r.id),
      datasets: [
        { label: t("dashboard.leaderboard.dataset"), data: reps.map((r) => Number(r.won_amount)), backgroundColor: PALETTE[1] },
      ],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { callback: (value) => tileMoney(value) } } },
    },
  }, t("dashboard.leaderboard.summary", { list: listed(reps.map((r) => `${r.id} ${money(r.won_amount)}`)) }));
  setData(
    "leaderboard",
    table(
      t("dashboard.leaderboard.caption"),
      [
        term(t("dashboard.leaderboard.rank"), "leaderboard", "rank"),
        t("dashboard.leaderboard.level"),
        t("dashboard.leaderboard.id"),
        t("dashboard.leaderboard.team"),
        term(t("dashboard.leaderboard.won_count"), "leaderboard", "won_count"),
        term(t("dashboard.leaderboard.won_amount"), "leaderboard", "won_amount"),
      ],
      answer.rows.map((r) => [
        String(r.rank),
        t(`dashboard.level.${r.level}`),
        r.id,
        r.team,
        fmt.count(r.won_count),
        money(r.won_amount),
      ]),
    ),
  );
}

function drawFollowUpEfficiency(answer) {
  const column = (key) => term(t(`dashboard.efficiency.${key}`), "follow-up-efficiency", key);
  setData(
    "follow-up-efficiency",
    table(
      t("dashboard.efficiency.caption"),
      [
        t("dashboard.efficiency.level"),
        t("dashboard.efficiency.id"),
        t("dashboard.efficiency.team"),
        column("leads"),
        column("avg_first_response_seconds"),
        column("avg_followups_per_lead"),
        column("within_sla_share"),
        column("reclaimed"),
      ],
      answer.rows.map((r) => [
        t(`dashboard.level.${r.level}`),
        r.id,
        r.team,
        fmt.count(r.leads),
        fmt.duration(r.avg_first_response_seconds),
        ratio(r.avg_followups_per_lead),
        fmt.percent(r.within_sla_share),
        fmt.count(r.reclaimed),
      ]),
    ),
  );
}

function drawKpis(answer) {
  const kpi = answer.rows[0] || {};
  const tiles = [
    ["cac", tileMoney(kpi.cac)],
    ["ltv", tileMoney(kpi.ltv)],
    ["ltv_to_cac", ratio(kpi.ltv_to_cac)],
    ["mql_to_sql_rate", fmt.percent(kpi.mql_to_sql_rate)],
    ["marketing_roi", ratio(kpi.marketing_roi)],
  ];
  document.getElementById("kpis").replaceChildren(
    ...tiles.map(([key, value]) =>
      el("div", { class: "tile", "data-kpi": key }, el("dt", {}, term(t(`dashboard.kpi.${key}`), "kpis", key)), el("dd", {}, value)),
    ),
  );
}

function drawExperiments(answer) {
  const notEnough = t("dashboard.experiments.notEnough", { min: fmt.count(answer.min_sample) });
  const controls = new Set();
  const column = (key) => term(t(`dashboard.experiments.${key}`), "experiments", key);
  setData(
    "experiments",
    table(
      t("dashboard.experiments.caption", { metric: t(`dashboard.metric.${answer.metric || "won"}`) }),
      [
        t("dashboard.experiments.experiment"),
        t("dashboard.experiments.variant"),
        column("n"),
        column("conversions"),
        column("rate"),
        column("lift"),
        column("p_value"),
        column("diff_ci"),
      ],
      answer.rows.map((r) => {
        const control = !controls.has(r.experiment);
        controls.add(r.experiment);
        const compared = control ? "—" : null;
        return [
          r.experiment,
          r.variant,
          fmt.count(r.n),
          fmt.count(r.conversions),
          `${fmt.percent(r.rate)} (${t("dashboard.experiments.range", { low: fmt.percent(r.rate_ci_low), high: fmt.percent(r.rate_ci_high) })})`,
          fmt.percent(r.lift),
          compared ?? (r.enough_data ? pValue(r.p_value) : notEnough),
          compared ??
            (r.enough_data && r.diff_ci_low !== null
              ? t("dashboard.experiments.range", { low: fmt.percent(r.diff_ci_low), high: fmt.percent(r.diff_ci_high) })
              : notEnough),
        ];
      }),
      { empty: t("dashboard.experiments.empty") },
    ),
  );
}

function pValue(p) {
  if (p === null || p === undefined) return "—";
  return Number(p) < 0.001 ? "< 0.001" : fmt.decimal(p, 3);
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

/** Today's date (YYYY-MM-DD) in the user's time zone. */
function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timeZone() }).format(new Date());
}

/** `day` (YYYY-MM-DD) moved by `days`. */
function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** The chosen days in the user's time zone: from the start of `from` to the start of the day
 * after `to`, which the server reads as that zone's midnights (`tz`). */
function period() {
  return { from: value("from"), to: addDays(value("to"), 1), tz: timeZone() };
}

async function loadDefinitions() {
  try {
    meaning = await api("/v1/reports/definitions");
  } catch (error) {
    say(document.getElementById("updated"), describe(error), "error");
  }
}

async function refresh() {
  const status = document.getElementById("updated");
  if (!value("from") || !value("to")) return;
  if (!meaning.reports.kpis) await loadDefinitions();
  const range = period();
  footnotes.clear();
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
  showFootnotes();
  const failed = results.filter((ok) => !ok).length;
  say(
    status,
    failed ? t("dashboard.status.failed", { count: failed }) : t("dashboard.status.updated", { time: fmt.dateTime(new Date().toISOString()) }),
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

startPage(
  () => {
    const last = today();
    document.getElementById("from").value = addDays(last, -29);
    document.getElementById("to").value = last;
    document.getElementById("time-zone").textContent = t("dashboard.range.timeZone", { zone: timeZone() });
    document.getElementById("range").addEventListener("submit", (event) => {
      event.preventDefault();
      refresh();
    });
    for (const id of ["interval", "metric"]) document.getElementById(id).addEventListener("change", refresh);
    document.getElementById("auto-refresh").addEventListener("change", schedule);
    schedule();
    refresh();
  },
  { namespaces: ["dashboard"] },
);
