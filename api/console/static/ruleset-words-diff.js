// "Compare with the active version" in words: each rule, timer, sequence and template of
// the active version beside the draft's, changed rows highlighted with what changed, as
// the server's `POST /v1/rulesets/describe` (rules/describe.py) words them.

import { el } from "./console.js";
import { t } from "./i18n.js";

/** "rule", "timer"… in the chosen language. */
function subjectWords(subject) {
  const words = {
    rule: t("wordsDiff.subject.rule"),
    timer: t("wordsDiff.subject.timer"),
    sequence: t("wordsDiff.subject.sequence"),
    template: t("wordsDiff.subject.template"),
    experiment: t("wordsDiff.subject.experiment"),
    pool: t("wordsDiff.subject.pool"),
  };
  return words[subject] || subject;
}

/** "added", "removed", "changed" in the chosen language. */
function kindWords(kind) {
  const words = { added: t("wordsDiff.kind.added"), removed: t("wordsDiff.kind.removed"), changed: t("wordsDiff.kind.changed") };
  return words[kind] || kind;
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
      el("th", { scope: "row" }, t("wordsDiff.row", { subject: subjectWords(subject), id: id.join(":") }), change ? el("span", { class: "kind" }, t("wordsDiff.kind", { kind: kindWords(change.kind) })) : ""),
      el("td", { "data-label": t("wordsDiff.active", { version: activeVersion }) }, (change ? change.before : base.get(k)) ?? "—"),
      el(
        "td",
        { "data-label": t("wordsDiff.draft") },
        after ?? "—",
        change && change.differences && change.differences.length ? el("ul", { class: "differences" }, change.differences.map((d) => el("li", {}, d))) : null,
      ),
    );
  });
  return el(
    "table",
    { class: "words-diff" },
    el(
      "caption",
      {},
      described.changes.length
        ? t("wordsDiff.changes", { count: described.changes.length, version: activeVersion })
        : t("wordsDiff.noChange", { version: activeVersion }),
    ),
    el(
      "thead",
      {},
      el("tr", {}, el("th", { scope: "col" }, ""), el("th", { scope: "col" }, t("wordsDiff.active", { version: activeVersion })), el("th", { scope: "col" }, t("wordsDiff.draft"))),
    ),
    el("tbody", {}, rows),
  );
}
