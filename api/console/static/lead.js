// /leads/{id}: the lead as it stands (owner and team by name), its running deadlines in
// words, the actions its stage allows (each posted as an event through the public API,
// a refusal shown beside its form), and its timeline in time order, worded.

import { api, describe, el, pageSetting, say, startPage, table } from "./console.js";
import { fmt, t } from "./i18n.js";
import { leadActions } from "./lead-actions.js";
import {
  deadlineInWords,
  kindWord,
  loadWorkContext,
  overdue,
  poolReasonWord,
  stageWord,
} from "./work-words.js";

// After an action, the read model, the workflow's decisions and the deadlines follow a
// moment later: the page reads again a few times.
const REFRESH_AFTER_MS = [0, 700, 1500, 3000, 6000];

function decidedBy(event) {
  if (event.ruleset_version === null || event.ruleset_version === undefined) return t("timeline.posted");
  const version = event.ruleset_version;
  return event.rule_id ? t("timeline.rule", { rule: event.rule_id, version }) : t("timeline.lifecycle", { version });
}

// The event's trace: a link where the operator set LEADFLOW_TRACE_URL, else its id.
function traceOf(event, traceUrl) {
  if (!event.trace_id) return null;
  const short = event.trace_id.slice(0, 8);
  if (!traceUrl) return el("code", { title: event.trace_id }, short);
  const href = traceUrl.replace("{trace_id}", event.trace_id);
  return el("a", { href, target: "_blank", rel: "noopener", title: event.trace_id }, short);
}

/** Who did it: the `actor` auth records on each appended event, by name when known. */
function actorOf(event, names) {
  const actor = event.actor;
  if (!actor) return null;
  // {kind: "user", user_id, person_id, role} or {kind: "key", key_id}
  return actor.person_id ? names.person(actor.person_id) : actor.user_id || actor.key_id;
}

function details(event, names, words) {
  const data = event.data || {};
  switch (event.type) {
    case "lead.followed_up":
      return [t("detail.followedUp", { kind: kindWord(words, data.kind || "call"), rep: names.person(data.rep_id) }), data.note]
        .filter(Boolean)
        .join(" — ");
    case "lead.claimed":
    case "lead.reassigned":
    case "lead.released":
      return [t("detail.rep", { rep: names.person(data.rep_id) }), data.reason && t("detail.reason", { reason: data.reason })]
        .filter(Boolean)
        .join(", ");
    case "lead.assigned":
      return t("detail.owner", { owner: names.person(data.owner) });
    case "lead.won":
    case "lead.opportunity_opened":
      return data.amount === undefined || data.amount === null ? "" : fmt.money(data.amount, data.currency || "CNY");
    case "lead.qualified":
    case "lead.stage_changed":
      return t("detail.stage", { stage: stageWord(words, data.stage) });
    case "lead.lost":
    case "lead.returned_to_pool":
      return data.reason ? t("detail.reason", { reason: poolReasonWord(words, data.reason) }) : "";
    case "lead.timer_fired":
      return t("detail.timer", { timer: data.timer });
    default:
      return Object.entries(data)
        .filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
        .join(", ");
  }
}

/** The timeline's order: when it happened, then its place on the stream. */
export function inTimeOrder(events) {
  return [...events].sort(
    (a, b) => new Date(a.occurred_at) - new Date(b.occurred_at) || a.sequence - b.sequence,
  );
}

startPage(
  async () => {
    const leadId = window.location.pathname.split("/").pop();
    const status = document.getElementById("lead-status");
    const ui = pageSetting("temporal-ui");
    const namespace = pageSetting("namespace");
    document.getElementById("workflow-link").href =
      `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows/lead-${leadId}`;
    say(status, t("lead.loading"));

    const context = await loadWorkContext(status);
    if (!context) return;
    const { names, words, person } = context;

    function showFacts(lead, stream) {
      const won = stream.events.filter((e) => e.type === "lead.won").pop();
      const name = lead.name || lead.email || lead.lead_id;
      document.getElementById("lead-title").textContent = t("lead.titleOf", { name });
      const erased = lead.erased ? t("fact.erased") : null;
      const facts = [
        ["fact.name", lead.name ?? erased],
        ["fact.company", lead.company ?? erased],
        ["fact.email", lead.email ?? erased],
        ["fact.phone", lead.phone ?? erased],
        ["fact.stage", stageWord(words, lead.stage)],
        ["fact.owner", names.person(lead.owner)],
        ["fact.team", names.team(lead.team)],
        ["fact.inPool", lead.in_pool ? t("fact.yes", { reason: poolReasonWord(words, lead.pool_reason) }) : t("fact.no")],
        ["fact.wonAmount", lead.won_amount === null ? null : fmt.money(lead.won_amount, won?.data?.currency || "CNY")],
        ["fact.source", [lead.source, lead.channel].filter(Boolean).join(" / ")],
        ["fact.region", lead.region],
        ["fact.captured", fmt.dateTime(lead.created_at)],
        ["fact.firstResponse", fmt.dateTime(lead.first_response_at)],
        ["fact.followups", fmt.count(lead.followups_count)],
        ["fact.leadId", lead.lead_id],
      ];
      document.getElementById("lead-facts").replaceChildren(
        ...facts.flatMap(([key, value]) => [
          el("dt", {}, t(key)),
          el("dd", { "data-fact": key.slice(5) }, value === null || value === undefined || value === "" ? "—" : value),
        ]),
      );
    }

    function showDeadlines(lead) {
      const now = Date.now();
      const list = document.getElementById("lead-deadlines");
      const items = (lead.deadlines || []).map((deadline) =>
        el(
          "li",
          { "data-timer": deadline.timer, class: overdue(deadline, now) ? "overdue" : null },
          overdue(deadline, now) ? el("strong", {}, `${t("deadline.overdue")}: `) : null,
          deadlineInWords(deadline, words, now),
        ),
      );
      list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, t("lead.noDeadline"))]));
    }

    function showTimeline(stream) {
      const traceUrl = pageSetting("trace-url");
      const traced = stream.events.some((e) => e.trace_id);
      const headers = ["timeline.when", "timeline.event", "timeline.who", "timeline.details", "timeline.decidedBy"];
      if (traced) headers.push("timeline.trace");
      const ordered = inTimeOrder(stream.events);
      document.getElementById("lead-timeline").replaceChildren(
        table(
          t("lead.timelineCaption", { count: ordered.length }),
          [...headers.map((key) => t(key)), "#"],
          ordered.map((e) => [
            el("time", { datetime: e.occurred_at }, fmt.dateTime(e.occurred_at)),
            el("span", { "data-type": e.type }, words.events[e.type] || e.type),
            actorOf(e, names),
            details(e, names, words),
            decidedBy(e),
            ...(traced ? [traceOf(e, traceUrl)] : []),
            String(e.sequence),
          ]),
        ),
      );
    }

    const actions = leadActions({
      root: document.getElementById("lead-actions"),
      leadId,
      names,
      words,
      person,
      onDone: () => refreshSoon(),
    });

    async function load() {
      let lead, stream;
      try {
        [lead, stream] = await Promise.all([api(`/v1/leads/${leadId}`), api(`/v1/leads/${leadId}/events`)]);
      } catch (error) {
        say(status, describe(error), "error");
        return;
      }
      showFacts(lead, stream);
      showDeadlines(lead);
      actions.show(lead);
      showTimeline(stream);
      say(status, t("lead.refreshed"));
    }

    function refreshSoon() {
      for (const delay of REFRESH_AFTER_MS) setTimeout(load, delay);
    }

    await load();
  },
  { namespaces: ["lead"] },
);
