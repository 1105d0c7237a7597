// Shared by the pages that work leads (lead, pool, worklist): who is signed in, the
// directory's names, the words for event types, kinds, stages and pool reasons, and a
// lead's deadlines in words. Their strings are the `lead` namespace's.

import { api, currentUser, describe, say } from "./console.js";
import { fmt, locale, t } from "./i18n.js";

/** What a work page reads first: the directory's `names`, the event `words`, and the
 * `person` signed in ({role, person_id, ...}; null for an API key). Null, with the error
 * said in `status`, when the names or the words cannot be read. */
export async function loadWorkContext(status) {
  try {
    const [names, words] = await Promise.all([loadNames(), loadWords()]);
    return { names, words, person: currentUser() };
  } catch (error) {
    say(status, describe(error), "error");
    return null;
  }
}

/** The directory's names: `person(id)` (reps and people), `team(id)`, and the active reps. */
export async function loadNames() {
  const directory = await api("/v1/directory");
  const people = new Map();
  for (const entry of [...(directory.people || []), ...(directory.reps || [])]) {
    people.set(entry.id, entry.name || entry.id);
  }
  const teams = new Map((directory.teams || []).map((team) => [team.id, team.name || team.id]));
  return {
    person: (id) => (id ? people.get(id) || id : null),
    team: (id) => (id ? teams.get(id) || id : null),
    reps: (directory.reps || []).filter((rep) => rep.active !== false),
  };
}

/** The words for event types, follow-up kinds, stages and pool reasons in this language
 * (`GET /v1/words/events`). */
export async function loadWords() {
  return api("/v1/words/events", { query: { locale } });
}

export const KINDS = ["call", "visit", "email", "wechat", "meeting", "sms"];

export function kindWord(words, kind) {
  return words.kinds[kind] || t(`kind.${kind}`);
}

export function stageWord(words, stage) {
  return words.stages[stage] || stage;
}

export function poolReasonWord(words, reason) {
  return reason ? words.pool_reasons[reason] || reason : t("fact.noReason");
}

/** One deadline in words: "reminder to Wang Fang in 3 hours (Dec 8, 2026, 2:00 PM)". */
export function deadlineInWords(deadline, words, now = Date.now()) {
  const at = fmt.dateTime(deadline.due_at);
  const relative = fmt.relative(deadline.due_at, now);
  const consequences = deadline.consequences || [];
  const pool = consequences.find((c) => c.action === "return_to_pool");
  const notify = consequences.find((c) => c.action === "notify" && (c.recipient_name || c.recipient));
  let said;
  if (deadline.kind === "nurture") {
    said = t("deadline.nurture", { template: consequences[0]?.template || "", relative, at });
  } else if (pool) {
    said = t("deadline.toPool", { relative, at, reason: poolReasonWord(words, pool.reason) });
  } else if (notify) {
    said = t("deadline.notify", { name: notify.recipient_name || notify.recipient, relative, at });
  } else {
    said = t("deadline.plain", { timer: deadline.timer, relative, at });
  }
  const conditional = (pool || notify) && (pool || notify).conditional;
  return conditional ? said + t("deadline.conditional") : said;
}

/** Whether the deadline is already past. */
export function overdue(deadline, now = Date.now()) {
  return new Date(deadline.due_at).getTime() < now;
}
