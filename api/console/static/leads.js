// /leads: search by owner, team, stage, pool and source; the filters live in the URL (they
// are not secret), so a search can be bookmarked and the browser's back button works.

import { api, describe, el, format, say, startPage, table } from "./console.js";

const FILTERS = ["owner", "team", "stage", "in_pool", "source"];
const PAGE_SIZE = 50;

function leadLabel(lead) {
  return lead.name || lead.email || lead.phone || lead.lead_id;
}

/** A table row's cells for one lead; the first links to the lead's page. */
function leadCells(lead) {
  return [
    el("a", { href: `/leads/${lead.lead_id}` }, leadLabel(lead)),
    lead.stage,
    lead.owner,
    lead.team,
    lead.in_pool ? "yes" : "no",
    lead.source,
    format.time(lead.created_at),
  ];
}

const LEAD_HEADERS = ["Lead", "Stage", "Owner", "Team", "In pool", "Source", "Captured"];

startPage(() => {
  const params = new URLSearchParams(window.location.search);
  const filters = {};
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    document.querySelector(`#filters [name="${name}"]`).value = value;
    if (value) filters[name] = value;
  }
  const status = document.getElementById("leads-status");
  const more = document.getElementById("more");
  const found = [];
  let cursor = null;

  async function load() {
    say(status, "Loading…");
    try {
      const answer = await api("/v1/leads", { query: { ...filters, limit: PAGE_SIZE, cursor } });
      found.push(...answer.items);
      cursor = answer.next_cursor;
    } catch (error) {
      say(status, describe(error), "error");
      return;
    }
    const described = Object.entries(filters).map(([k, v]) => `${k} = ${v}`).join(", ");
    document.getElementById("leads-table").replaceChildren(
      table(
        described ? `Leads where ${described}` : "All leads",
        LEAD_HEADERS,
        found.map(leadCells),
        { empty: "No lead matches these filters." },
      ),
    );
    more.hidden = !cursor;
    say(status, `${found.length} lead(s)${cursor ? ", more to show" : ""}.`);
  }

  more.addEventListener("click", load);
  load();
});
