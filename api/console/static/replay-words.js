// A replay's result in business terms: "3 leads would go to Zhang Min instead of Li Wei",
// "2 more would be reclaimed". The server's `summary` sentences when it sends them;
// otherwise made here from the assignments and outcome counts.

import { readable } from "./rule-words.js";

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

const OUTCOMES = {
  reclaim: ["would be reclaimed to the pool", "would be reclaimed to the pool"],
  reminder: ["reminder", "reminders"],
  "nurture enrolment": ["nurture enrolment", "nurture enrolments"],
  "email to lead": ["email to leads", "emails to leads"],
  notification: ["notification", "notifications"],
};

function outcomeSentence(movement) {
  const delta = movement.candidate - movement.baseline;
  if (delta === 0) return null;
  const n = Math.abs(delta);
  const more = delta > 0 ? "more" : "fewer";
  const detail = movement.detail ? ` (${readable(movement.detail)})` : "";
  if (movement.kind === "reclaim") return `${n} ${more} ${n === 1 ? "lead" : "leads"} would be reclaimed to the pool${detail}`;
  const [one, many] = OUTCOMES[movement.kind] || [movement.kind, `${movement.kind}s`];
  return `${n} ${more} ${n === 1 ? one : many}${detail}`;
}

/** The sentences for a finished replay's `result`; `words` names reps. */
export function replaySentences(result, words) {
  if (Array.isArray(result.summary) && result.summary.length) return result.summary;
  const sentences = [];
  const moves = new Map();
  for (const a of result.assignments || []) {
    const key = `${a.from_owner ?? ""}→${a.to_owner ?? ""}`;
    moves.set(key, [(moves.get(key) || [0])[0] + 1, a.from_owner, a.to_owner]);
  }
  const name = (id) => (id ? words.rep(id) : "the pool");
  for (const [count, from, to] of [...moves.values()].sort((x, y) => y[0] - x[0])) {
    sentences.push(`${plural(count, "lead", "leads")} would go to ${name(to)} instead of ${name(from)}`);
  }
  for (const movement of result.movements || []) {
    const sentence = outcomeSentence(movement);
    if (sentence) sentences.push(sentence);
  }
  if (!sentences.length) sentences.push("nothing a user would see changes");
  return sentences;
}
