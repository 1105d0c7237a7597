// /rulesets, "Trials": run a published version in shadow (decided beside the active version,
// changing nothing) or as a canary for a share of new leads; the live report of what it
// changes, in words with the directory's names; promote or stop it (docs/trials.md).
//
// The page's own module (rulesets.js) starts the page; this one waits until the console is
// signed in, then renders and refreshes every few seconds while the tab is visible.

import { api, describe, el, format, say, table } from "./console.js";

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

const nameOf = (id) => (id === null || id === undefined ? "nobody" : id === "(pool)" ? "the pool" : names.get(id) || id);

/** "12 of 80 decisions differ: 9 leads would go to Zhang Min instead of Li Wei; …" */
function sentence(report) {
  const verb = report.mode === "canary" ? "went" : "would go";
  if (!report.triggers_compared) return "No decisions compared yet.";
  const head = `${format.count(report.disagreeing)} of ${format.count(report.triggers_compared)} decisions differ`;
  const moves = report.assignment_moves.map(
    (m) => `${format.count(m.count)} lead(s) ${verb} to ${nameOf(m.to_owner)} instead of ${nameOf(m.from_owner)}`,
  );
  const pool = report.pool_returns.map(
    (p) => `${p.change > 0 ? "+" : ""}${p.change} return(s) to the pool (${p.reason})`,
  );
  const notes = report.notifications.map(
    (n) => `${n.change > 0 ? "+" : ""}${n.change} notification(s) ${n.notification}`,
  );
  const failed = report.failures ? [`${format.count(report.failures)} evaluation(s) failed`] : [];
  const details = [...moves, ...pool, ...notes, ...failed];
  return details.length ? `${head}: ${details.join("; ")}.` : `${head}.`;
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
      ? `Version ${trial.version} is the canary for ${format.percent(trial.share)} of new leads`
      : `Version ${trial.version} runs in shadow`;
  const canary = report.canary_leads
    ? el(
        "p",
        {},
        `Since the start: ${format.count(report.canary_leads.in_canary)} lead(s) in the canary, ` +
          `${format.count(report.canary_leads.not_in_canary)} not.`,
      )
    : null;
  const byRule = report.by_rule.length
    ? table(
        "Differences by rule",
        ["Rule", "Decisions"],
        report.by_rule.map((r) => [r.rule_id, format.count(r.count)]),
      )
    : null;
  return el(
    "article",
    { class: "trial", "data-version": trial.version, "data-mode": trial.mode },
    el("h3", {}, `${what} (since ${format.time(trial.started_at)}, by ${trial.started_by || "—"})`),
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
          onclick: () => act(`/v1/rulesets/${trial.version}/promote`, undefined, `Version ${trial.version} is now active.`),
        },
        `Promote v${trial.version}`,
      ),
      el(
        "button",
        {
          type: "button",
          onclick: () => act(`/v1/rulesets/${trial.version}/stop`, undefined, `The trial of version ${trial.version} stopped.`),
        },
        `Stop v${trial.version}`,
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
    "aria-label": `Canary share for v${version.version} (a fraction, 0.1 = 10%)`,
  });
  return [
    `v${version.version}`,
    version.name,
    el(
      "button",
      {
        type: "button",
        onclick: () => act(`/v1/rulesets/${version.version}/shadow`, undefined, `Version ${version.version} runs in shadow.`),
      },
      `Shadow v${version.version}`,
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
              `Version ${version.version} is the canary for ${format.percent(Number(share.value))} of new leads.`,
            ),
        },
        `Canary v${version.version}`,
      ),
    ),
  ];
}

async function render() {
  try {
    const [listing, trials] = await Promise.all([api("/v1/rulesets"), api("/v1/rulesets/trials")]);
    const reports = await Promise.all(
      trials.trials.map((t) => api(`/v1/rulesets/${t.version}/trial-report`)),
    );
    running.replaceChildren(
      ...(trials.trials.length
        ? trials.trials.map((t, i) => trialCard(t, reports[i]))
        : [el("p", { class: "muted" }, "No version is on trial.")]),
    );
    const startable = listing.rulesets.filter((v) => !v.mode).sort((x, y) => y.version - x.version);
    candidates.replaceChildren(
      table("Published versions you can try", ["Version", "Name", "Shadow", "Canary (share of new leads)"], startable.map(candidateRow), {
        empty: "Publish a version to try it.",
      }),
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
