// /pool: the leads nobody owns, each with a rep picker and a Claim button. A refused claim
// says why (the rep is at capacity, inactive, cooling down, …) next to the lead it concerns.

import { ApiError, api, describe, el, format, say, startPage, table } from "./console.js";

const PAGE_SIZE = 100;
// Headlines for the refusals a claim can meet (SPEC §4, pool policy); the API's message
// (with the numbers) follows each one.
const REFUSALS = {
  rep_at_capacity: "Rep at capacity",
  rep_inactive: "Rep is inactive",
  lead_not_in_pool: "No longer in the pool",
  claim_cooldown: "Rep owned this lead too recently",
  daily_claim_limit_reached: "Rep reached today's claim limit",
};

function refusal(error) {
  if (error instanceof ApiError && REFUSALS[error.code]) return `${REFUSALS[error.code]}: ${error.message}`;
  return describe(error);
}

startPage(async () => {
  const status = document.getElementById("pool-status");
  const more = document.getElementById("pool-more");
  const rows = [];
  let reps = [];
  let cursor = null;

  function claimCell(lead) {
    const pickerId = `rep-for-${lead.lead_id}`;
    const result = el("p", { class: "claim-result", role: "alert", id: `claim-result-${lead.lead_id}` });
    const picker = el(
      "select",
      { id: pickerId, name: "rep" },
      el("option", { value: "" }, "choose a rep"),
      reps.map((rep) => el("option", { value: rep.id }, `${rep.name || rep.id} (${rep.id}, ${rep.team})`)),
    );
    const button = el("button", { type: "submit" }, "Claim");
    const form = el(
      "form",
      { class: "claim", "data-lead": lead.lead_id },
      el("label", { for: pickerId, class: "visually-hidden" }, `Rep to claim ${lead.name || lead.lead_id}`),
      picker,
      button,
      result,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!picker.value) {
        say(result, "Choose the rep who takes this lead first.", "error");
        picker.focus();
        return;
      }
      button.disabled = true;
      try {
        await api("/v1/events", {
          method: "POST",
          body: { type: "lead.claimed", lead_id: lead.lead_id, data: { rep_id: picker.value } },
        });
        say(result, `Claimed by ${picker.value}.`, "ok");
        say(status, `${lead.name || lead.lead_id} claimed by ${picker.value}.`, "ok");
        picker.disabled = true;
      } catch (error) {
        say(result, refusal(error), "error");
        button.disabled = false;
        picker.focus();
      }
    });
    return form;
  }

  function render() {
    document.getElementById("pool-table").replaceChildren(
      table(
        "Leads in the public pool",
        ["Lead", "Why in the pool", "Team", "Source", "Captured", "Claim"],
        rows.map((lead) => [
          el("a", { href: `/leads/${lead.lead_id}` }, lead.name || lead.email || lead.lead_id),
          lead.pool_reason,
          lead.team,
          lead.source,
          format.time(lead.created_at),
          claimCell(lead),
        ]),
        { empty: "The pool is empty." },
      ),
    );
    more.hidden = !cursor;
  }

  async function load() {
    try {
      const answer = await api("/v1/leads", { query: { in_pool: "true", limit: PAGE_SIZE, cursor } });
      rows.push(...answer.items);
      cursor = answer.next_cursor;
    } catch (error) {
      say(status, describe(error), "error");
      return;
    }
    render();
    say(status, `${rows.length} lead(s) in the pool.`);
  }

  try {
    const directory = await api("/v1/directory");
    reps = (directory.reps || []).filter((rep) => rep.active !== false);
  } catch (error) {
    say(status, describe(error), "error");
    return;
  }
  more.addEventListener("click", load);
  await load();
});
