// "Compare with the active version" in words: each rule, timer, sequence and template of
// the active version beside the draft's, changed rows highlighted with what changed. The
// server's `POST /v1/rulesets/describe` gives the sentences when it is there; without it
// they are made here from the builder's own words.

import { el } from "./console.js";
import { durationSeconds, durationWords } from "./duration-input.js";
import { readable, ruleSentence, timerSentence } from "./rule-words.js";

function sentences(words, doc) {
  const out = [];
  for (const rule of (doc && doc.rules) || []) out.push({ subject: "rule", id: rule.id, sentence: ruleSentence(words, rule), raw: rule });
  for (const timer of (doc && doc.timers) || []) out.push({ subject: "timer", id: timer.id, sentence: timerSentence(words, timer), raw: timer });
  for (const [id, s] of Object.entries((doc && doc.sequences) || {})) {
    const steps = (s.steps || [])
      .map((step) => `${step.template} ${durationSeconds(step.wait) === 0 ? "immediately" : `after ${durationWords(step.wait)}`}`)
      .join(", ");
    out.push({ subject: "sequence", id, sentence: `Sends ${steps}.`, raw: s });
  }
  for (const [id, t] of Object.entries((doc && doc.templates) || {}))
    out.push({ subject: "template", id, sentence: `Subject "${t.subject}".`, raw: t });
  return out;
}

function leaves(value, path = "", out = new Map()) {
  if (value && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) leaves(child, `${path}/${key}`, out);
    if (!Object.keys(value).length) out.set(path, JSON.stringify(value));
  } else out.set(path, value);
  return out;
}

function shown(words, key, value) {
  if (value === undefined) return "nothing";
  if (typeof value === "string" && durationSeconds(value) !== null) return durationWords(value);
  if (key === "rep") return words.rep(value);
  if (key === "team") return words.team(value);
  return typeof value === "string" ? `"${value}"` : String(value);
}

const ITEMS = { actions: "action", all: "condition", any: "condition", steps: "step", when: "trigger" };

/** "action 1 › rep" for the path parts `actions/0/params/rep`. */
function place(parts) {
  const words = [];
  parts.forEach((part, i) => {
    if (/^\d+$/.test(part) && ITEMS[parts[i - 1]]) words[words.length - 1] = `${ITEMS[parts[i - 1]]} ${Number(part) + 1}`;
    else if (part !== "params" && part !== "conditions") words.push(readable(part));
  });
  return words.join(" › ") || "the whole";
}

/** What changed between two versions of one item, in words. */
function differences(words, before, after) {
  const a = leaves(before);
  const b = leaves(after);
  const out = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(path) === b.get(path)) continue;
    const parts = path.split("/").filter(Boolean);
    const key = parts[parts.length - 1];
    const where = place(parts);
    out.push(`${where}: ${shown(words, key, a.get(path))} → ${shown(words, key, b.get(path))}`);
  }
  return out;
}

/** The describe answer's shape, made here: `{changes, base, candidate}`. */
export function describeLocally(words, base, candidate) {
  const before = sentences(words, base);
  const after = sentences(words, candidate);
  const key = (s) => `${s.subject}:${s.id}`;
  const old = new Map(before.map((s) => [key(s), s]));
  const now = new Map(after.map((s) => [key(s), s]));
  const changes = [];
  for (const s of after) {
    const was = old.get(key(s));
    if (!was) changes.push({ kind: "added", subject: s.subject, id: s.id, before: null, after: s.sentence, differences: [] });
    else if (JSON.stringify(was.raw) !== JSON.stringify(s.raw))
      changes.push({ kind: "changed", subject: s.subject, id: s.id, before: was.sentence, after: s.sentence, differences: differences(words, was.raw, s.raw) });
  }
  for (const s of before)
    if (!now.has(key(s))) changes.push({ kind: "removed", subject: s.subject, id: s.id, before: s.sentence, after: null, differences: [] });
  const strip = ({ subject, id, sentence }) => ({ subject, id, sentence });
  return { changes, base: before.map(strip), candidate: after.map(strip) };
}

/** A side-by-side table of `described` (the describe answer): active left, draft right. */
export function wordsDiff(described, activeVersion) {
  const key = (s) => `${s.subject}:${s.id}`;
  const changes = new Map(described.changes.map((c) => [key(c), c]));
  const base = new Map(described.base.map((s) => [key(s), s.sentence]));
  const draft = new Map(described.candidate.map((s) => [key(s), s.sentence]));
  const keys = [...new Set([...draft.keys(), ...base.keys()])];
  // Changes first, so the eye lands on them; then everything else as it is.
  keys.sort((a, b) => Number(changes.has(b)) - Number(changes.has(a)));
  const rows = keys.map((k) => {
    const change = changes.get(k);
    const [subject, ...id] = k.split(":");
    const after = change && change.after !== undefined ? change.after : draft.get(k);
    return el(
      "tr",
      { class: change ? `change ${change.kind}` : "same", "data-subject": subject, "data-id": id.join(":") },
      el("th", { scope: "row" }, `${subject} ${id.join(":")}`, change ? el("span", { class: "kind" }, ` (${change.kind})`) : ""),
      el("td", {}, (change ? change.before : base.get(k)) ?? "—"),
      el(
        "td",
        {},
        after ?? "—",
        change && change.differences && change.differences.length ? el("ul", { class: "differences" }, change.differences.map((d) => el("li", {}, d))) : null,
      ),
    );
  });
  return el(
    "table",
    { class: "words-diff" },
    el("caption", {}, described.changes.length ? `${described.changes.length} change(s) against v${activeVersion}` : `No change against v${activeVersion}`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""), el("th", { scope: "col" }, `Active (v${activeVersion})`), el("th", { scope: "col" }, "Draft"))),
    el("tbody", {}, rows),
  );
}
