// /rulesets: the published versions (who, when, which is active) with activate/roll back,
// and a draft of a new version, edited in forms (the rule builder's tabs) or as JSON (the
// advanced tab), both views of one document: validation errors shown on their field and
// at their line, a comparison with the active version in words, a what-if replay in
// business terms, then publish and activate.

import { api, ApiError, describe, el, say, startPage, table } from "./console.js";
import { fmt, locale, t } from "./i18n.js";
import { getAt, setAt } from "./builder-controls.js";
import { lineAndColumn, locateValues, placeOf } from "./json-places.js";
import { diffLines, withContext } from "./line-diff.js";
import { renderRules } from "./rule-builder.js";
import { wordsFor } from "./rule-words.js";
import { renderOther, renderSequences, renderTemplates, renderTimers } from "./ruleset-forms.js";
import { wordsDiff } from "./ruleset-words-diff.js";
import { templateFields } from "./template-preview.js";

const REPLAY_POLL_MS = 1000;
const VALIDATE_AFTER_MS = 600;
const TABS = ["rules", "timers", "sequences", "templates", "other", "json"];

const editor = document.getElementById("ruleset-editor");
const gutter = document.getElementById("gutter");
const errorsBox = document.getElementById("editor-errors");
const builderErrors = document.getElementById("builder-errors");
const status = document.getElementById("rulesets-status");
const panels = Object.fromEntries(TABS.map((tab) => [tab, document.getElementById(`panel-${tab}`)]));

let active = { version: null, ruleset: null };
let published = null; // the version the last publish made, offered for activation

// The draft both views edit; null while the JSON text does not parse.
const ctx = {
  doc: null,
  schema: null,
  directory: { teams: [], reps: [] },
  words: null,
  // "rule:<id>" / "timer:<id>" → the draft's sentence, as the server words it (describe).
  sentences: new Map(),
  opened: new Set(),
  previewFields: [],
  change: (path, value, options) => change(path, value, options),
  render: () => renderBuilder(),
};
let fieldErrors = [];
let validateTimer = null;
let sentencesTimer = null;

// ---- versions -------------------------------------------------------------------------

async function activate(version, rollBack) {
  try {
    await api(`/v1/rulesets/${version}/activate`, { method: "POST" });
    say(status, t(rollBack ? "rulesets.rolledBack" : "rulesets.activated", { version }), "ok");
  } catch (error) {
    say(status, t("rulesets.notActivated", { version, reason: describe(error) }), "error");
    return;
  }
  if (version === published) {
    published = null;
    document.getElementById("activate-published").hidden = true;
  }
  await loadVersions();
}

async function loadVersions() {
  const [listing, current] = await Promise.all([api("/v1/rulesets"), api("/v1/rulesets/active")]);
  active = current;
  const rows = [...listing.rulesets].sort((x, y) => y.version - x.version);
  document.getElementById("versions").replaceChildren(
    table(
      t("rulesets.versions.caption"),
      [
        t("rulesets.versions.version"),
        t("rulesets.versions.name"),
        t("rulesets.versions.publishedBy"),
        t("rulesets.versions.publishedAt"),
        t("rulesets.versions.state"),
        "",
      ],
      rows.map((v) => {
        const state = v.active ? el("strong", { class: "active-mark" }, t("rulesets.versions.active")) : "";
        const rollBack = active.version !== null && v.version < active.version;
        const action = v.active
          ? ""
          : el(
              "button",
              { type: "button", "data-version": v.version, onclick: () => activate(v.version, rollBack) },
              t(rollBack ? "rulesets.rollBackTo" : "rulesets.activate", { version: v.version }),
            );
        return [`v${v.version}`, v.name, v.published_by, fmt.dateTime(v.published_at), state, action];
      }),
    ),
  );
  for (const row of document.querySelectorAll("#versions tbody tr")) {
    if (row.querySelector(".active-mark")) row.classList.add("active");
  }
}

// ---- tabs -----------------------------------------------------------------------------

function selectTab(name, { focus = false } = {}) {
  for (const tab of TABS) {
    const button = document.getElementById(`tab-${tab}`);
    button.setAttribute("aria-selected", String(tab === name));
    button.tabIndex = tab === name ? 0 : -1;
    panels[tab].hidden = tab !== name;
  }
  if (focus) document.getElementById(`tab-${name}`).focus();
}

function wireTabs() {
  for (const tab of TABS) document.getElementById(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
  document.querySelector('[role="tablist"]').addEventListener("keydown", (event) => {
    const current = TABS.findIndex((tab) => document.getElementById(`tab-${tab}`).getAttribute("aria-selected") === "true");
    const next = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: TABS.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    selectTab(TABS[(next + TABS.length) % TABS.length], { focus: true });
  });
}

/** The tab that holds the field at JSON Pointer `path`. */
function tabOf(path) {
  const top = String(path).split("/")[1];
  if (top === "pool" || top === "experiments") return "other";
  return TABS.includes(top) ? top : "json";
}

// ---- the builder ----------------------------------------------------------------------

function renderBuilder({ focus } = {}) {
  if (!ctx.doc) return;
  const keep = focus || (document.activeElement && document.activeElement.id);
  renderRules(ctx, panels.rules);
  renderTimers(ctx, panels.timers);
  renderSequences(ctx, panels.sequences);
  renderTemplates(ctx, panels.templates);
  renderOther(ctx, panels.other);
  markFields(fieldErrors);
  const target = keep && document.getElementById(keep);
  if (target && target !== document.activeElement) target.focus();
}

/** A builder edit: the draft changes at `path`, the JSON text follows, validation soon. */
function change(path, value, { render = false, focus } = {}) {
  setAt(ctx.doc, path, value);
  editor.value = JSON.stringify(ctx.doc, null, 2);
  renderGutter();
  if (render) renderBuilder({ focus });
  clearTimeout(validateTimer);
  validateTimer = setTimeout(() => validate({ quiet: true }), VALIDATE_AFTER_MS);
}

/** Puts each rule and timer of a valid draft in the server's sentence (rules/describe.py). */
async function refreshSentences(document) {
  clearTimeout(sentencesTimer);
  let answer;
  try {
    answer = await described(document);
  } catch (error) {
    // An invalid draft keeps its last sentences: validation says what is wrong with it.
    if (!(error instanceof ApiError && error.status === 422)) {
      say(status, t("rulesets.noSentences", { reason: describe(error) }), "error");
    }
    return;
  }
  ctx.sentences = new Map(answer.candidate.map((s) => [`${s.subject}:${s.id}`, s.sentence]));
  for (const [part, key] of [["rules", "rule"], ["timers", "timer"]]) {
    for (const node of panels[part].querySelectorAll(`[data-${key}]`)) {
      const sentence = node.querySelector(".sentence");
      if (sentence) sentence.textContent = ctx.sentences.get(`${key}:${node.dataset[key]}`) || "";
    }
  }
}

/** A JSON edit: a text that parses to an object re-renders the forms; any other locks them. */
function jsonEdited() {
  renderGutter();
  let parsed;
  try {
    parsed = JSON.parse(editor.value);
  } catch {
    parsed = null;
  }
  const usable = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
  document.getElementById("builder-locked").hidden = usable;
  for (const tab of TABS.slice(0, -1)) panels[tab].inert = !usable;
  if (!usable) {
    ctx.doc = null;
    return;
  }
  ctx.doc = parsed;
  renderBuilder();
  clearTimeout(sentencesTimer);
  sentencesTimer = setTimeout(() => sentencesIfValid(parsed), VALIDATE_AFTER_MS);
}

/** The sentences of a JSON edit, once it is a valid ruleset (an invalid one answers the
 * describe route 422; the JSON tab shows its errors when asked to validate). */
async function sentencesIfValid(document) {
  try {
    const check = await api("/v1/rulesets/validate", { method: "POST", body: document });
    if (check.valid) await refreshSentences(document);
  } catch (error) {
    say(status, describe(error), "error");
  }
}

function controlFor(path) {
  // The field holding `path`, or the nearest one holding a part that contains it.
  let at = path;
  for (;;) {
    const found = [...document.querySelectorAll(`.builder [data-path="${CSS.escape(at)}"]`)];
    const control = found.find((n) => ["INPUT", "SELECT", "TEXTAREA"].includes(n.tagName)) || found[0];
    if (control) return control;
    if (!at) return null;
    at = at.slice(0, at.lastIndexOf("/"));
  }
}

/** Shows each error beside its field (aria-describedby) and as a list linking to them. */
function markFields(errors) {
  for (const node of document.querySelectorAll(".builder .field-error")) node.remove();
  for (const node of document.querySelectorAll(".builder [aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  }
  if (!errors.length) {
    builderErrors.replaceChildren();
    return;
  }
  const placed = errors.map((error, index) => {
    const control = controlFor(error.path || "");
    const id = `field-error-${index}`;
    if (control) {
      for (let up = control.closest("details"); up; up = up.parentElement.closest("details")) up.open = true;
      const message = el("span", { class: "field-error error", id }, error.message);
      if (["INPUT", "SELECT", "TEXTAREA"].includes(control.tagName)) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
        control.after(message);
      } else control.prepend(message);
    }
    return { ...error, control };
  });
  builderErrors.replaceChildren(
    el("h3", {}, t("rulesets.draftProblems", { count: errors.length })),
    el(
      "ol",
      { class: "error-list" },
      placed.map((p) =>
        el(
          "li",
          { "data-path": p.path ?? "" },
          el(
            "button",
            {
              type: "button",
              class: "place",
              onclick: () => {
                const tab = p.control ? tabOf(p.path) : "json";
                selectTab(tab);
                const target = controlFor(p.path || "");
                if (target && tab !== "json") target.focus();
                else editor.focus();
              },
            },
            where(p.path || ""),
          ),
          " ",
          el("span", { class: "message" }, p.message),
        ),
      ),
    ),
  );
}

/** "Rules › east-website › actions #1 › rep" for a JSON Pointer. */
function where(path) {
  const parts = path.split("/").slice(1);
  const words = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (/^\d+$/.test(part)) {
      const item = getAt(ctx.doc || {}, `/${parts.slice(0, i + 1).join("/")}`);
      words.push(item && item.id ? item.id : `#${Number(part) + 1}`);
    } else words.push(part.replaceAll("_", " "));
  }
  const text = words.join(" › ") || t("rulesets.theRuleset");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- the JSON editor ------------------------------------------------------------------

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
  fieldErrors = [];
  markFields([]);
}

/** Moves the caret to `start..end` in the editor and scrolls the line into view. */
function reveal(start, end) {
  selectTab("json");
  editor.focus();
  editor.setSelectionRange(start, end);
  const { line } = lineAndColumn(editor.value, start);
  const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 18;
  editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

/** Shows `errors` (`{path, message}` with JSON Pointer paths) at their places in the text
 * and on their fields in the forms. */
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
            t("rulesets.lineColumn", { line: p.line, column: p.column }),
          ),
          " ",
          p.path !== undefined ? el("code", {}, p.path || "/") : "",
          " ",
          el("span", { class: "message" }, p.message),
        ),
      ),
    ),
  );
  if (spans) {
    fieldErrors = errors;
    markFields(errors);
  }
}

/** The editor's document, or null after showing where its JSON is broken. */
function candidate() {
  let spans;
  try {
    spans = locateValues(editor.value);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    showErrors(t("rulesets.notJson"), [{ message: error.message, offset: error.offset }], null);
    return null;
  }
  return { document: JSON.parse(editor.value), spans };
}

async function validate({ quiet = false } = {}) {
  clearTimeout(validateTimer);
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
    showErrors(t("rulesets.invalid", { count: answer.errors.length }), answer.errors, parsed.spans);
    return false;
  }
  clearErrors();
  refreshSentences(parsed.document);
  const ok = t("rulesets.valid");
  errorsBox.replaceChildren(el("p", { class: "ok" }, ok));
  if (!quiet) builderErrors.replaceChildren(el("p", { class: "ok" }, ok));
  return true;
}

// ---- compare --------------------------------------------------------------------------

function ruleChanges(before, after) {
  const byId = (doc) => new Map(((doc && doc.rules) || []).map((r) => [r.id, JSON.stringify(r)]));
  const old = byId(before);
  const now = byId(after);
  const added = [...now.keys()].filter((id) => !old.has(id));
  const removed = [...old.keys()].filter((id) => !now.has(id));
  const changed = [...now.keys()].filter((id) => old.has(id) && old.get(id) !== now.get(id));
  return { added, removed, changed };
}

/** The draft and the active version in sentences, and what changed (rules/describe.py). */
function described(document) {
  // The server words the sentences in the console's language.
  return api("/v1/rulesets/describe", { method: "POST", query: { locale }, body: { candidate: document, base_version: null } });
}

async function showDiff() {
  const parsed = candidate();
  if (!parsed) return;
  const before = JSON.stringify(active.ruleset ?? {}, null, 2);
  const after = JSON.stringify(parsed.document, null, 2);
  const lines = withContext(diffLines(before, after));
  const { added, removed, changed } = ruleChanges(active.ruleset, parsed.document);
  const summary = [
    [t("rulesets.diff.added"), added],
    [t("rulesets.diff.removed"), removed],
    [t("rulesets.diff.changed"), changed],
  ].filter(([, ids]) => ids.length);
  document.getElementById("diff-summary").replaceChildren(
    lines.length
      ? el("ul", {}, summary.map(([what, ids]) => el("li", {}, t("rulesets.diff.item", { what, ids: ids.join(", ") }))))
      : el("p", {}, t("rulesets.diff.none", { version: active.version })),
  );
  document.getElementById("diff-lines").replaceChildren(
    ...lines.map(([kind, line]) =>
      el("span", { class: { "+": "added", "-": "removed", "…": "skipped" }[kind] || "same" }, `${kind} ${line}\n`),
    ),
  );
  document.getElementById("diff-view").hidden = false;
  try {
    document.getElementById("diff-words").replaceChildren(wordsDiff(await described(parsed.document), active.version));
  } catch (error) {
    say(status, t("rulesets.diff.failed", { reason: describe(error) }), "error");
  }
}

// ---- replay ---------------------------------------------------------------------------

function replayReport(result) {
  const rows = [
    [t("replay.leads"), fmt.count(result.leads_replayed)],
    [t("replay.events"), fmt.count(result.events_replayed)],
    [t("replay.assignments"), fmt.count((result.assignments || []).length)],
    [t("replay.rulesChanged"), (result.rules_changed || []).join(", ") || t("replay.none")],
  ];
  const name = (id) => (id ? ctx.words.rep(id) : t("replay.pool"));
  return [
    el("p", {}, result.unchanged ? t("replay.unchanged") : t("replay.changes")),
    table(t("replay.summaryCaption"), ["", ""], rows),
    table(
      t("replay.assignments"),
      [t("replay.lead"), t("replay.from"), t("replay.to")],
      (result.assignments || []).map((a) => [
        el("a", { href: `/leads/${a.lead_id}` }, a.lead_id),
        `${name(a.from_owner)} (${a.from_team || "—"})`,
        `${name(a.to_owner)} (${a.to_team || "—"})`,
      ]),
      { empty: t("replay.noAssignments") },
    ),
    table(
      t("replay.outcomes"),
      [t("replay.what"), "", t("replay.before"), t("replay.after")],
      [...(result.movements || []), ...(result.rules || [])].map((m) => [
        m.kind,
        m.detail,
        fmt.count(m.baseline),
        fmt.count(m.candidate),
      ]),
      { empty: t("replay.noOutcomes") },
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
  const summary = document.getElementById("replay-summary");
  view.hidden = false;
  report.replaceChildren();
  summary.replaceChildren();
  progress.value = 0;
  say(replayStatus, t("replay.starting"));
  const days = Number(document.getElementById("replay-window").value);
  const from = days ? new Date(Date.now() - days * 86400000).toISOString() : undefined;
  let replayId;
  try {
    ({ replay_id: replayId } = await api("/v1/replays", { method: "POST", query: { locale }, body: { ruleset: parsed.document, from } }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      // The candidate's own errors come back under /ruleset: show them in the editor.
      const own = error.details.filter((d) => String(d.path || "").startsWith("/ruleset"));
      const errors = own.map((d) => ({ ...d, path: d.path.slice("/ruleset".length) }));
      if (errors.length) showErrors(t("replay.refused"), errors, parsed.spans);
    }
    say(replayStatus, t("replay.notStarted", { reason: describe(error) }), "error");
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
      say(replayStatus, t("replay.finished"), "ok");
      const result = run.result || {};
      // In business terms, with names and the period (replay/summary.py).
      summary.replaceChildren(...(result.summary || []).map((s) => el("li", {}, s)));
      report.replaceChildren(el("details", {}, el("summary", {}, t("replay.details")), ...replayReport(result)));
      report.querySelector("details").open = true;
      return;
    }
    if (run.status === "failed") {
      say(replayStatus, t("replay.failed", { reason: run.error }), "error");
      return;
    }
    if (run.status === "cancelled") {
      say(replayStatus, t("replay.cancelled"), "error");
      return;
    }
    const state = { queued: t("replay.queued"), running: t("replay.running"), cancelling: t("replay.cancelling") }[run.status];
    say(replayStatus, t("replay.progress", { status: state || run.status, done: fmt.count(done), total: total ? fmt.count(total) : "?" }));
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
    published = version;
    const offer = document.getElementById("activate-published");
    offer.textContent = t("rulesets.activate", { version });
    offer.hidden = false;
    say(status, t("rulesets.published", { version }), "ok");
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && error.details.length) {
      showErrors(t("rulesets.notPublishedFix"), error.details, parsed.spans);
    } else {
      say(status, t("rulesets.notPublished", { reason: describe(error) }), "error");
    }
    return;
  }
  await loadVersions();
}

startPage(async () => {
  wireTabs();
  editor.addEventListener("input", jsonEdited);
  editor.addEventListener("scroll", () => {
    gutter.scrollTop = editor.scrollTop;
  });
  document.getElementById("validate").addEventListener("click", () => validate());
  document.getElementById("show-diff").addEventListener("click", showDiff);
  document.getElementById("run-replay").addEventListener("click", runReplay);
  document.getElementById("publish").addEventListener("click", publish);
  document.getElementById("activate-published").addEventListener("click", () => activate(published, false));
  let directory;
  try {
    [, ctx.schema, directory] = await Promise.all([loadVersions(), api("/v1/rulesets/schema", { query: { locale } }), api("/v1/directory")]);
  } catch (error) {
    say(status, describe(error), "error");
    return;
  }
  ctx.directory = directory;
  ctx.words = wordsFor(ctx.schema, directory);
  ctx.previewFields = await templateFields();
  editor.value = JSON.stringify(active.ruleset ?? { name: "new", rules: [] }, null, 2);
  jsonEdited();
  document.body.dataset.builderReady = "true";
}, { namespaces: ["rulesets"] });
