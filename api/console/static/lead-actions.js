// The lead page's action forms: log a follow-up, qualify, open an opportunity, win, lose,
// reassign, release. Each posts one event through `POST /v1/events` and shows the API's
// refusal (code and message) beside its form; only the actions the lead's stage and place
// allow are offered.

import { api, describe, el, say } from "./console.js";
import { t } from "./i18n.js";
import { KINDS, kindWord, stageWord } from "./work-words.js";

const STAGE_ORDER = ["new", "MQL", "SQL", "opportunity", "won", "lost"];
const CURRENCIES = ["CNY", "USD", "EUR", "HKD"];

function field(id, labelKey, control) {
  return el("p", { class: "field" }, el("label", { for: id }, t(labelKey)), control);
}

function select(id, options, selected) {
  return el(
    "select",
    { id, name: id },
    options.map(([value, words]) => el("option", { value, selected: value === selected }, words)),
  );
}

/** Which actions the lead allows now, by its stage and whether it has an owner. */
export function allowedActions(lead) {
  if (lead.stage === "won" || lead.stage === "lost") return [];
  const at = STAGE_ORDER.indexOf(lead.stage);
  const allowed = [];
  if (lead.owner) allowed.push("follow-up");
  if (at < STAGE_ORDER.indexOf("SQL")) allowed.push("qualify");
  if (at < STAGE_ORDER.indexOf("opportunity")) allowed.push("opportunity");
  allowed.push("win", "lose", "reassign");
  if (lead.owner) allowed.push("release");
  return allowed;
}

export function leadActions({ root, leadId, names, words, person, onDone }) {
  // The rep who acts: the person signed in, else (an API key) the lead's owner.
  const actingRep = (lead) => (person && person.person_id) || lead.owner;

  function form(action, titleKey, fields, eventOf) {
    const result = el("p", { class: "action-result", role: "alert", id: `act-${action}-result` });
    const button = el("button", { type: "submit" }, t(titleKey));
    const node = el(
      "form",
      { class: "lead-action", id: `act-${action}`, "data-action": action },
      el("h3", {}, t(titleKey)),
      fields,
      button,
      result,
    );
    node.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      button.disabled = true;
      try {
        await api("/v1/events", { method: "POST", body: { lead_id: leadId, ...eventOf() } });
        say(result, t("action.done", { what: t(titleKey) }), "ok");
        onDone();
      } catch (error) {
        say(result, t("action.refused", { code: error.code || "error", message: describe(error) }), "error");
      } finally {
        button.disabled = false;
      }
    });
    return node;
  }

  function repPicker(id) {
    return select(id, [["", t("action.chooseRep")], ...names.reps.map((rep) => [rep.id, `${rep.name || rep.id} (${names.team(rep.team)})`])], "");
  }

  const builders = {
    "follow-up": (lead) => {
      const kind = select("follow-up-kind", KINDS.map((k) => [k, kindWord(words, k)]), "call");
      const note = el("textarea", { id: "follow-up-note", name: "note", rows: 2, maxlength: 5000 });
      return form("follow-up", "action.followUp", [field("follow-up-kind", "action.kind", kind), field("follow-up-note", "action.note", note)], () => ({
        type: "lead.followed_up",
        data: { rep_id: actingRep(lead), kind: kind.value, ...(note.value.trim() ? { note: note.value.trim() } : {}) },
      }));
    },
    qualify: (lead) => {
      const stages = ["MQL", "SQL"].filter((s) => STAGE_ORDER.indexOf(s) > STAGE_ORDER.indexOf(lead.stage));
      const stage = select("qualify-stage", stages.map((s) => [s, stageWord(words, s)]), stages[0]);
      return form("qualify", "action.qualify", [field("qualify-stage", "action.stage", stage)], () => ({
        type: "lead.qualified",
        data: { stage: stage.value },
      }));
    },
    opportunity: () => {
      const amount = el("input", { id: "opportunity-amount", type: "number", min: 0, step: "0.01" });
      return form("opportunity", "action.opportunity", [field("opportunity-amount", "action.amount", amount)], () => ({
        type: "lead.opportunity_opened",
        data: amount.value === "" ? {} : { amount: Number(amount.value) },
      }));
    },
    win: () => {
      const amount = el("input", { id: "win-amount", type: "number", min: 0, step: "0.01", required: true });
      const currency = select("win-currency", CURRENCIES.map((c) => [c, c]), "CNY");
      return form("win", "action.win", [field("win-amount", "action.amount", amount), field("win-currency", "action.currency", currency)], () => ({
        type: "lead.won",
        data: { amount: Number(amount.value), currency: currency.value },
      }));
    },
    lose: () => {
      const reason = el("input", { id: "lose-reason", type: "text", maxlength: 500 });
      return form("lose", "action.lose", [field("lose-reason", "action.reason", reason)], () => ({
        type: "lead.lost",
        data: reason.value.trim() ? { reason: reason.value.trim() } : {},
      }));
    },
    reassign: () => {
      const rep = repPicker("reassign-rep");
      rep.required = true;
      const reason = el("input", { id: "reassign-reason", type: "text", maxlength: 500 });
      return form("reassign", "action.reassign", [field("reassign-rep", "action.rep", rep), field("reassign-reason", "action.reason", reason)], () => ({
        type: "lead.reassigned",
        data: { rep_id: rep.value, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) },
      }));
    },
    release: (lead) => {
      const reason = el("input", { id: "release-reason", type: "text", maxlength: 500 });
      return form("release", "action.release", [field("release-reason", "action.reason", reason)], () => ({
        type: "lead.released",
        data: { rep_id: actingRep(lead), ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) },
      }));
    },
  };

  let shownFor = null;
  return {
    /** Offers the forms `lead` allows; kept as they are (with their results) while the
     * allowed set does not change, so a refusal stays readable across refreshes. */
    show(lead) {
      const allowed = allowedActions(lead);
      const key = `${lead.stage}|${lead.owner}|${allowed.join(",")}`;
      if (key === shownFor) return;
      shownFor = key;
      if (!allowed.length) {
        root.replaceChildren(el("p", { class: "muted" }, t("lead.closed", { stage: stageWord(words, lead.stage) })));
        return;
      }
      root.replaceChildren(...allowed.map((action) => builders[action](lead)));
    },
  };
}
