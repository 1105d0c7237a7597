// /rulesets, "Trials": run a published version in shadow (decided beside the active version,
// changing nothing) or as a canary for a share of new leads; the live report of what it
// changes, in words with the directory's names; promote or stop it (docs/trials.md).
//
// The page's own module (rulesets.js) starts the page; this one waits until the console is
// signed in, then renders and refreshes every few seconds while the tab is visible.

import { api, describe, el, say, table } from "./console.js";
import { fmt, t } from "./i18n.js";

const REFRESH_MS = 10000;

const section = document.getElementById("trials");
const status = document.getElementById("trials-status");
const running = document.getElementById("trials-running");
const candidates = document.getElementById("trials-candidates");

let names = new Map();

async function loadNames() {
  try {
    const directory = await api("/v1/directory");
    names = new Map([...directory.reps, ...(directory.people || []), ...directory.teams].map((x) => [x.id, x.name]));
  } catch {
    names = new Map(); // ids then stand for themselves
  }
}

const nameOf = (id) => (id === null || id === undefined ? t("trials.nobody") : id === "(pool)" ? t("trials.pool") : names.get(id) || id);

/** "12 of 80 decisions differ: 9 leads would go to Zhang Min instead of Li Wei; …" */
function sentence(report) {
  if (!report.triggers_compared) return t("trials.noneCompared");
  const head = t("trials.differ", { count: report.disagreeing, differ: fmt.count(report.disagreeing), compared: fmt.count(report.triggers_compared) });
  const moves = report.assignment_moves.map((m) =>
    t(report.mode === "canary" ? "trials.moved" : "trials.wouldMove", {
      count: m.count,
      leads: fmt.count(m.count),
      to: nameOf(m.to_owner),
      from: nameOf(m.from_owner),
    }),
  );
  const signed = (n) => `${n > 0 ? "+" : ""}${n}`;
  const pool = report.pool_returns.map((p) => t("trials.poolReturns", { count: Math.abs(p.change), change: signed(p.change), reason: p.reason }));
  const notes = report.notifications.map((n) =>
    t("trials.notifications", { count: Math.abs(n.change), change: signed(n.change), notification: n.notification }),
  );
  const failed = report.failures ? [t("trials.failures", { count: report.failures, failures: fmt.count(report.failures) })] : [];
  const details = [...moves, ...pool, ...notes, ...failed];
  return details.length ? t("trials.sentence", { head, details: details.join(t("trials.joiner")) }) : t("trials.sentenceShort", { head });
}

async function act(path, body, done) {
  try {
    await api(path, { method: "POST", body });
    say(status, done, "ok");
  } catch (error) {
    say(status, describe(error), "error");
  }
  await render();
}

function trialCard(trial, report) {
  const what =
    trial.mode === "canary"
      ? t("trials.isCanary", { version: trial.version, share: fmt.percent(trial.share) })
      : t("trials.isShadow", { version: trial.version });
  const canary = report.canary_leads
    ? el(
        "p",
        {},
        t("trials.canaryLeads", {
          count: report.canary_leads.in_canary,
          inCanary: fmt.count(report.canary_leads.in_canary),
          notInCanary: fmt.count(report.canary_leads.not_in_canary),
        }),
      )
    : null;
  const byRule = report.by_rule.length
    ? table(
        t("trials.byRule"),
        [t("trials.rule"), t("trials.decisions")],
        report.by_rule.map((r) => [r.rule_id, fmt.count(r.count)]),
      )
    : null;
  return el(
    "article",
    { class: "trial", "data-version": trial.version, "data-mode": trial.mode },
    el("h3", {}, t("trials.heading", { what, since: fmt.dateTime(trial.started_at), by: trial.started_by || "—" })),
    el("p", { class: "trial-summary" }, sentence(report)),
    canary,
    byRule,
    el(
      "div",
      { class: "toolbar" },
      el(
        "button",
        {
          type: "button",
          onclick: () => act(`/v1/rulesets/${trial.version}/promote`, undefined, t("trials.promoted", { version: trial.version })),
        },
        t("trials.promote", { version: trial.version }),
      ),
      el(
        "button",
        {
          type: "button",
          onclick: () => act(`/v1/rulesets/${trial.version}/stop`, undefined, t("trials.stopped", { version: trial.version })),
        },
        t("trials.stop", { version: trial.version }),
      ),
    ),
  );
}

function candidateRow(version) {
  const share = el("input", {
    type: "number",
    min: "0.01",
    max: "0.99",
    step: "0.01",
    value: "0.1",
    "aria-label": t("trials.shareLabel", { version: version.version }),
  });
  return [
    `v${version.version}`,
    version.name,
    el(
      "button",
      {
        type: "button",
        onclick: () => act(`/v1/rulesets/${version.version}/shadow`, undefined, t("trials.shadowStarted", { version: version.version })),
      },
      t("trials.shadow", { version: version.version }),
    ),
    el(
      "span",
      {},
      share,
      " ",
      el(
        "button",
        {
          type: "button",
          onclick: () =>
            act(
              `/v1/rulesets/${version.version}/canary`,
              { share: Number(share.value) },
              t("trials.canaryStarted", { version: version.version, share: fmt.percent(Number(share.value)) }),
            ),
        },
        t("trials.canary", { version: version.version }),
      ),
    ),
  ];
}

async function render() {
  try {
    const [listing, trials] = await Promise.all([api("/v1/rulesets"), api("/v1/rulesets/trials")]);
    const reports = await Promise.all(
      trials.trials.map((trial) => api(`/v1/rulesets/${trial.version}/trial-report`)),
    );
    running.replaceChildren(
      ...(trials.trials.length
        ? trials.trials.map((trial, i) => trialCard(trial, reports[i]))
        : [el("p", { class: "muted" }, t("trials.none"))]),
    );
    const startable = listing.rulesets.filter((v) => !v.mode).sort((x, y) => y.version - x.version);
    candidates.replaceChildren(
      table(
        t("trials.candidates"),
        [t("trials.version"), t("trials.name"), t("trials.shadowColumn"), t("trials.canaryColumn")],
        startable.map(candidateRow),
        { empty: t("trials.publishFirst") },
      ),
    );
  } catch (error) {
    say(status, describe(error), "error");
  }
}

let started = false;

async function start() {
  if (started || document.getElementById("main").hidden) return;
  started = true;
  await loadNames();
  await render();
  setInterval(() => {
    if (document.visibilityState === "visible" && !section.contains(document.activeElement)) render();
  }, REFRESH_MS);
}

// Signed in already, or once the sign-in form shows the page.
new MutationObserver(start).observe(document.getElementById("main"), { attributes: true, attributeFilter: ["hidden"] });
start();
