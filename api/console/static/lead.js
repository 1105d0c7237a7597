// /leads/{id}: the lead as it stands, its open tasks, its whole timeline (decided events
// with the rule and ruleset version behind them, and the trace each was appended in when
// traces are on) and a link to its workflow.

import { api, describe, el, format, pageSetting, say, startPage, table } from "./console.js";

function details(data) {
  return Object.entries(data || {})
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
}

function decidedBy(event) {
  if (event.ruleset_version === null || event.ruleset_version === undefined) return "posted";
  const version = `ruleset v${event.ruleset_version}`;
  return event.rule_id ? `rule ${event.rule_id} · ${version}` : `lifecycle · ${version}`;
}

// The event's trace: a link where the operator set LEADFLOW_TRACE_URL, else its id.
function traceOf(event, traceUrl) {
  if (!event.trace_id) return null;
  const short = event.trace_id.slice(0, 8);
  if (!traceUrl) return el("code", { title: event.trace_id }, short);
  const href = traceUrl.replace("{trace_id}", event.trace_id);
  return el("a", { href, target: "_blank", rel: "noopener", title: event.trace_id }, short);
}

startPage(async () => {
  const leadId = window.location.pathname.split("/").pop();
  const status = document.getElementById("lead-status");
  const ui = pageSetting("temporal-ui");
  const namespace = pageSetting("namespace");
  document.getElementById("workflow-link").href =
    `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows/lead-${leadId}`;

  let lead, stream;
  try {
    [lead, stream] = await Promise.all([api(`/v1/leads/${leadId}`), api(`/v1/leads/${leadId}/events`)]);
  } catch (error) {
    say(status, describe(error), "error");
    return;
  }
  document.getElementById("lead-title").textContent = `Lead ${lead.name || lead.email || lead.lead_id}`;
  const facts = [
    ["Lead id", lead.lead_id],
    ["Stage", lead.stage],
    ["Owner", lead.owner],
    ["Team", lead.team],
    ["In pool", lead.in_pool ? `yes (${lead.pool_reason || "no reason recorded"})` : "no"],
    ["Placed by", lead.placed_by_rule ? `rule ${lead.placed_by_rule} · ruleset v${lead.placed_by_ruleset_version}` : null],
    ["Email", lead.email],
    ["Phone", lead.phone],
    ["Do not contact", lead.do_not_contact ? `yes (${lead.do_not_contact_reason || "no reason recorded"})` : "no"],
    ["Source / channel", [lead.source, lead.channel].filter(Boolean).join(" / ")],
    ["Region", lead.region],
    ["Intent", lead.intent],
    ["Score", lead.score],
    ["Tags", (lead.tags || []).join(", ")],
    ["Sequences", (lead.sequences || []).join(", ")],
    ["Variants", details(lead.variants)],
    ["Captured", format.time(lead.created_at)],
    ["First response", format.time(lead.first_response_at)],
    ["Follow-ups", lead.followups_count],
  ];
  document.getElementById("lead-facts").replaceChildren(
    ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value === null || value === "" ? "—" : value)]),
  );
  const tasks = Object.entries(lead.open_tasks || {});
  document.getElementById("lead-tasks").replaceChildren(
    table("Open tasks", ["Task", "Due"], tasks.map(([task, due]) => [task, format.time(due)]), {
      empty: "No open task.",
    }),
  );
  const traceUrl = pageSetting("trace-url");
  const traced = stream.events.some((e) => e.trace_id);
  const headers = ["#", "When", "Event", "Details", "Decided by", ...(traced ? ["Trace"] : [])];
  document.getElementById("lead-timeline").replaceChildren(
    table(
      `Every event on the lead's stream (${stream.events.length})`,
      headers,
      stream.events.map((e) => [
        String(e.sequence),
        format.time(e.occurred_at),
        e.type,
        details(e.data),
        decidedBy(e),
        ...(traced ? [traceOf(e, traceUrl)] : []),
      ]),
    ),
  );
  say(status, "");
});
