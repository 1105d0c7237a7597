// "Compare with the active version" in words: each rule, timer, sequence and template of
// the active version beside the draft's, changed rows highlighted with what changed, as
// the server's `POST /v1/rulesets/describe` (rules/describe.py) words them.

import { el } from "./console.js";

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
