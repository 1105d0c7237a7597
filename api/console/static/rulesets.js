// /rulesets: the published versions (who, when, which is active) with activate/roll back,
// and an editor for a new version: validation errors shown at their line, a diff against
// the active version, a what-if replay, then publish.

import { api, ApiError, describe, el, format, say, startPage, table } from "./console.js";
import { lineAndColumn, locateValues, placeOf } from "./json-places.js";
import { diffLines, withContext } from "./line-diff.js";

const REPLAY_POLL_MS = 1000;

const editor = document.getElementById("ruleset-editor");
const gutter = document.getElementById("gutter");
const errorsBox = document.getElementById("editor-errors");
const status = document.getElementById("rulesets-status");

let active = { version: null, ruleset: null };

// ---- versions -------------------------------------------------------------------------

async function activate(version, verb) {
  try {
    await api(`/v1/rulesets/${version}/activate`, { method: "POST" });
    say(status, `${verb} version ${version}: it is now active.`, "ok");
  } catch (error) {
    say(status, `Version ${version} was not activated: ${describe(error)}`, "error");
    return;
  }
  await loadVersions();
}

async function loadVersions() {
  const [listing, current] = await Promise.all([api("/v1/rulesets"), api("/v1/rulesets/active")]);
  active = current;
  const rows = [...listing.rulesets].sort((x, y) => y.version - x.version);
  document.getElementById("versions").replaceChildren(
    table(
      "Published versions, newest first",
      ["Version", "Name", "Published by", "Published at", "State", ""],
      rows.map((v) => {
        const state = v.active ? el("strong", { class: "active-mark" }, "● active") : "";
        const verb = active.version !== null && v.version < active.version ? "Rolled back to" : "Activated";
        const action = v.active
          ? ""
          : el(
              "button",
              { type: "button", "data-version": v.version, onclick: () => activate(v.version, verb) },
              verb === "Activated" ? `Activate v${v.version}` : `Roll back to v${v.version}`,
            );
        return [`v${v.version}`, v.name, v.published_by, format.time(v.published_at), state, action];
      }),
    ),
  );
  for (const row of document.querySelectorAll("#versions tbody tr")) {
    if (row.querySelector(".active-mark")) row.classList.add("active");
  }
}

// ---- editor ---------------------------------------------------------------------------

function renderGutter(badLines = new Set()) {
  const count = editor.value.split("\n").length;
  const width = String(count).length;
  gutter.textContent = Array.from({ length: count }, (_, i) =>
    `${badLines.has(i + 1) ? "!" : " "}${String(i + 1).padStart(width)}`,
  ).join("\n");
  gutter.scrollTop = editor.scrollTop;
}

function clearErrors() {
  errorsBox.replaceChildren();
  editor.removeAttribute("aria-invalid");
  renderGutter();
}

/** Moves the caret to `start..end` in the editor and scrolls the line into view. */
function reveal(start, end) {
  editor.focus();
  editor.setSelectionRange(start, end);
  const { line } = lineAndColumn(editor.value, start);
  const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 18;
  editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

/** Shows `errors` (`{path, message}` with JSON Pointer paths) at their places in the text. */
function showErrors(title, errors, spans) {
  const text = editor.value;
  const placed = errors.map((error) => {
    const place = spans ? placeOf(spans, error.path || "") : { start: error.offset || 0, end: error.offset || 0 };
    return { ...error, ...place, ...lineAndColumn(text, place.start) };
  });
  placed.sort((a, b) => a.start - b.start);
  editor.setAttribute("aria-invalid", "true");
  renderGutter(new Set(placed.map((p) => p.line)));
  errorsBox.replaceChildren(
    el("h3", {}, title),
    el(
      "ol",
      { class: "error-list" },
      placed.map((p) =>
        el(
          "li",
          { "data-path": p.path ?? "", "data-line": p.line },
          el(
            "button",
            { type: "button", class: "place", onclick: () => reveal(p.start, p.end) },
            `Line ${p.line}, column ${p.column}`,
          ),
          " ",
          p.path !== undefined ? el("code", {}, p.path || "/") : "",
          " ",
          el("span", { class: "message" }, p.message),
        ),
      ),
    ),
  );
}

/** The editor's document, or null after showing where its JSON is broken. */
function candidate() {
  let spans;
  try {
    spans = locateValues(editor.value);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    showErrors("The text is not valid JSON", [{ message: error.message, offset: error.offset }], null);
    return null;
  }
  return { document: JSON.parse(editor.value), spans };
}

async function validate() {
  const parsed = candidate();
  if (!parsed) return false;
  let answer;
  try {
    answer = await api("/v1/rulesets/validate", { method: "POST", body: parsed.document });
  } catch (error) {
    say(status, describe(error), "error");
    return false;
  }
  if (!answer.valid) {
    showErrors(`${answer.errors.length} error(s): this ruleset cannot be published`, answer.errors, parsed.spans);
    return false;
  }
  clearErrors();
  errorsBox.replaceChildren(el("p", { class: "ok" }, "Valid: this ruleset can be published."));
  return true;
}

function ruleChanges(before, after) {
  const byId = (doc) => new Map(((doc && doc.rules) || []).map((r) => [r.id, JSON.stringify(r)]));
  const old = byId(before);
  const now = byId(after);
  const added = [...now.keys()].filter((id) => !old.has(id));
  const removed = [...old.keys()].filter((id) => !now.has(id));
  const changed = [...now.keys()].filter((id) => old.has(id) && old.get(id) !== now.get(id));
  return { added, removed, changed };
}

function showDiff() {
  const parsed = candidate();
  if (!parsed) return;
  const before = JSON.stringify(active.ruleset ?? {}, null, 2);
  const after = JSON.stringify(parsed.document, null, 2);
  const lines = withContext(diffLines(before, after));
  const { added, removed, changed } = ruleChanges(active.ruleset, parsed.document);
  const summary = [
    ["Rules added", added],
    ["Rules removed", removed],
    ["Rules changed", changed],
  ].filter(([, ids]) => ids.length);
  document.getElementById("diff-summary").replaceChildren(
    lines.length
      ? el("ul", {}, summary.map(([what, ids]) => el("li", {}, `${what}: ${ids.join(", ")}`)))
      : el("p", {}, `No change against active version v${active.version}.`),
  );
  document.getElementById("diff-lines").replaceChildren(
    ...lines.map(([kind, line]) =>
      el("span", { class: { "+": "added", "-": "removed", "…": "skipped" }[kind] || "same" }, `${kind} ${line}\n`),
    ),
  );
  document.getElementById("diff-view").hidden = false;
}

// ---- replay ---------------------------------------------------------------------------

function replayReport(result) {
  const rows = [
    ["Leads replayed", format.count(result.leads_replayed)],
    ["Events replayed", format.count(result.events_replayed)],
    ["Assignments that change", format.count((result.assignments || []).length)],
    ["Rules the candidate changes", (result.rules_changed || []).join(", ") || "none"],
  ];
  return [
    el("p", {}, result.unchanged ? "Nothing a user would see changes." : "Changes under this candidate:"),
    table("Replay summary", ["", ""], rows),
    table(
      "Assignments that change",
      ["Lead", "From", "To"],
      (result.assignments || []).map((a) => [
        el("a", { href: `/leads/${a.lead_id}` }, a.lead_id),
        `${a.from_owner || "pool"} (${a.from_team || "—"})`,
        `${a.to_owner || "pool"} (${a.to_team || "—"})`,
      ]),
      { empty: "No assignment changes." },
    ),
    table(
      "Outcomes that change",
      ["What", "", "Before", "After"],
      [...(result.movements || []), ...(result.rules || [])].map((m) => [
        m.kind,
        m.detail,
        format.count(m.baseline),
        format.count(m.candidate),
      ]),
      { empty: "No outcome changes." },
    ),
  ];
}

async function runReplay() {
  const parsed = candidate();
  if (!parsed) return;
  const view = document.getElementById("replay-view");
  const replayStatus = document.getElementById("replay-status");
  const progress = document.getElementById("replay-progress");
  const report = document.getElementById("replay-report");
  view.hidden = false;
  report.replaceChildren();
  progress.value = 0;
  say(replayStatus, "Starting the replay…");
  let replayId;
  try {
    ({ replay_id: replayId } = await api("/v1/replays", { method: "POST", body: { ruleset: parsed.document } }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      // The candidate's own errors come back under /ruleset: show them in the editor.
      const own = error.details.filter((d) => String(d.path || "").startsWith("/ruleset"));
      const errors = own.map((d) => ({ ...d, path: d.path.slice("/ruleset".length) }));
      if (errors.length) showErrors("The replay refused this ruleset", errors, parsed.spans);
    }
    say(replayStatus, `The replay was not started: ${describe(error)}`, "error");
    return;
  }
  for (;;) {
    let run;
    try {
      run = await api(`/v1/replays/${replayId}`);
    } catch (error) {
      say(replayStatus, describe(error), "error");
      return;
    }
    const { done, total } = run.progress || {};
    if (total) progress.value = done / total;
    if (run.status === "succeeded") {
      progress.value = 1;
      say(replayStatus, "Replay finished.", "ok");
      report.replaceChildren(...replayReport(run.result || {}));
      return;
    }
    if (run.status === "failed") {
      say(replayStatus, `The replay failed: ${run.error}`, "error");
      return;
    }
    if (run.status === "cancelled") {
      say(replayStatus, "The replay was cancelled.", "error");
      return;
    }
    say(replayStatus, `Replay ${run.status}: ${format.count(done)} of ${total ? format.count(total) : "?"} events.`);
    await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS));
  }
}

// ---- publish --------------------------------------------------------------------------

async function publish() {
  const parsed = candidate();
  if (!parsed) return;
  try {
    const { version } = await api("/v1/rulesets", { method: "POST", body: parsed.document });
    clearErrors();
    say(status, `Published version ${version}. Activate it in the list above when you are ready.`, "ok");
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && error.details.length) {
      showErrors("Not published: fix these first", error.details, parsed.spans);
    } else {
      say(status, `Not published: ${describe(error)}`, "error");
    }
    return;
  }
  await loadVersions();
}

startPage(async () => {
  editor.addEventListener("input", () => renderGutter());
  editor.addEventListener("scroll", () => {
    gutter.scrollTop = editor.scrollTop;
  });
  document.getElementById("validate").addEventListener("click", validate);
  document.getElementById("show-diff").addEventListener("click", showDiff);
  document.getElementById("run-replay").addEventListener("click", runReplay);
  document.getElementById("publish").addEventListener("click", publish);
  try {
    await loadVersions();
  } catch (error) {
    say(status, describe(error), "error");
    return;
  }
  editor.value = JSON.stringify(active.ruleset ?? { name: "new", rules: [] }, null, 2);
  renderGutter();
});
