// /pool: the leads nobody owns, with their company and team by name. A rep signed in
// claims one for themselves ("Claim for me"); with an API key (or as a manager) a rep is
// picked first. A refused claim says why (the rep is at capacity, inactive, cooling down,
// …) next to the lead it concerns.

import { ApiError, api, describe, el, say, startPage, table } from "./console.js";
import { fmt, t } from "./i18n.js";
import { loadWorkContext, poolReasonWord } from "./work-words.js";

const PAGE_SIZE = 100;
const REFUSALS = [
  "rep_at_capacity",
  "rep_inactive",
  "lead_not_in_pool",
  "claim_cooldown",
  "daily_claim_limit_reached",
  "not_permitted",
];

// A headline for the refusals a claim can meet (SPEC §4, pool policy); the API's message
// (with the numbers) follows it.
function refusal(error) {
  if (error instanceof ApiError && REFUSALS.includes(error.code)) {
    return `${t(`pool.refused.${error.code}`)}: ${error.message}`;
  }
  return describe(error);
}

startPage(
  async () => {
    const status = document.getElementById("pool-status");
    const more = document.getElementById("pool-more");
    const rows = [];
    let cursor = null;
    const context = await loadWorkContext(status);
    if (!context) return;
    const { names, words, person } = context;
    const forMe = person && person.role === "rep" && person.person_id;

    function claimCell(lead) {
      const label = lead.name || lead.lead_id;
      const pickerId = `rep-for-${lead.lead_id}`;
      const result = el("p", { class: "claim-result", role: "alert", id: `claim-result-${lead.lead_id}` });
      const picker = forMe
        ? null
        : el(
            "select",
            { id: pickerId, name: "rep" },
            el("option", { value: "" }, t("pool.chooseRep")),
            names.reps.map((rep) => el("option", { value: rep.id }, `${rep.name || rep.id} (${rep.id}, ${names.team(rep.team)})`)),
          );
      const button = el("button", { type: "submit" }, t(forMe ? "pool.claimForMe" : "pool.claim"));
      const form = el(
        "form",
        { class: "claim", "data-lead": lead.lead_id },
        picker ? el("label", { for: pickerId, class: "visually-hidden" }, t("pool.repFor", { lead: label })) : null,
        picker,
        button,
        result,
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const repId = forMe || picker.value;
        if (!repId) {
          say(result, t("pool.chooseFirst"), "error");
          picker.focus();
          return;
        }
        button.disabled = true;
        try {
          await api("/v1/events", {
            method: "POST",
            body: { type: "lead.claimed", lead_id: lead.lead_id, data: { rep_id: repId } },
          });
          const rep = names.person(repId);
          say(result, t("pool.claimedBy", { rep }), "ok");
          say(status, t("pool.leadClaimedBy", { lead: label, rep }), "ok");
          if (picker) picker.disabled = true;
        } catch (error) {
          say(result, refusal(error), "error");
          button.disabled = false;
          (picker || button).focus();
        }
      });
      return form;
    }

    function render() {
      document.getElementById("pool-table").replaceChildren(
        table(
          t("pool.caption"),
          ["pool.lead", "pool.company", "pool.why", "pool.team", "pool.source", "pool.captured", "pool.claim"].map((k) => t(k)),
          rows.map((lead) => [
            el("a", { href: `/leads/${lead.lead_id}` }, lead.name || lead.email || lead.lead_id),
            lead.company,
            poolReasonWord(words, lead.pool_reason),
            names.team(lead.team),
            lead.source,
            fmt.dateTime(lead.created_at),
            claimCell(lead),
          ]),
          { empty: t("pool.empty") },
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
      say(status, t("pool.count", { count: rows.length }));
    }

    more.addEventListener("click", load);
    await load();
  },
  { namespaces: ["lead", "pool"] },
);
