// /worklist ("My leads"): the open leads of the person signed in (or, with an API key or as
// a manager, of the rep chosen), overdue first, each deadline in words and a quick "Log a
// call" per row.

import { api, describe, el, say, startPage, table } from "./console.js";
import { fmt, t } from "./i18n.js";
import { deadlineInWords, loadWorkContext, overdue, stageWord } from "./work-words.js";

const PAGE_SIZE = 50;

startPage(
  async () => {
    const status = document.getElementById("worklist-status");
    const more = document.getElementById("worklist-more");
    const picker = document.getElementById("worklist-owner");
    const context = await loadWorkContext(status);
    if (!context) return;
    const { names, words, person } = context;
    // A rep sees only their own leads: no one else's to pick.
    document.getElementById("worklist-owner-form").hidden = Boolean(person && person.role === "rep");
    const wanted = new URLSearchParams(window.location.search).get("owner") || (person && person.person_id) || "";
    picker.replaceChildren(
      el("option", { value: "" }, t("worklist.chooseOwner")),
      ...names.reps.map((rep) => el("option", { value: rep.id, selected: rep.id === wanted }, rep.name || rep.id)),
    );
    if (wanted && !names.reps.some((rep) => rep.id === wanted)) {
      picker.append(el("option", { value: wanted, selected: true }, names.person(wanted)));
    }
    let rows = [];
    let cursor = null;

    function logCall(item) {
      const result = el("span", { class: "action-result", role: "alert", id: `call-result-${item.lead_id}` });
      const button = el("button", { type: "button", id: `call-${item.lead_id}` }, t("worklist.logCall"));
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("/v1/events", {
            method: "POST",
            body: { type: "lead.followed_up", lead_id: item.lead_id, data: { rep_id: item.owner, kind: "call" } },
          });
          say(result, t("worklist.callLogged"), "ok");
        } catch (error) {
          say(result, `${error.code || "error"}: ${describe(error)}`, "error");
          button.disabled = false;
        }
      });
      return el("span", {}, button, " ", result);
    }

    function render(owner) {
      const now = Date.now();
      document.getElementById("worklist-table").replaceChildren(
        table(
          t("worklist.caption", { owner: names.person(owner) }),
          ["worklist.lead", "worklist.company", "worklist.stage", "worklist.next", "worklist.lastActivity", "worklist.act"].map((k) => t(k)),
          rows.map((item) => [
            el("a", { href: `/leads/${item.lead_id}` }, item.name || item.lead_id),
            item.company,
            stageWord(words, item.stage),
            item.next_deadline
              ? el("span", { class: overdue(item.next_deadline, now) ? "overdue" : null }, deadlineInWords(item.next_deadline, words, now))
              : t("worklist.noDeadline"),
            fmt.relative(item.last_activity_at, now),
            logCall(item),
          ]),
          { empty: t("worklist.none") },
        ),
      );
      more.hidden = !cursor;
    }

    async function load(owner) {
      try {
        const answer = await api("/v1/worklist", { query: { owner, limit: PAGE_SIZE, cursor } });
        rows.push(...answer.items);
        cursor = answer.next_cursor;
      } catch (error) {
        say(status, describe(error), "error");
        return;
      }
      render(owner);
      say(status, t("worklist.count", { count: rows.length }));
    }

    function start(owner) {
      rows = [];
      cursor = null;
      if (!owner) {
        say(status, t("worklist.pickOwner"));
        return;
      }
      load(owner);
    }

    document.getElementById("worklist-owner-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const url = new URL(window.location.href);
      url.searchParams.set("owner", picker.value);
      window.history.replaceState(null, "", url);
      start(picker.value);
    });
    more.addEventListener("click", () => load(picker.value));
    start(picker.value);
  },
  { namespaces: ["lead", "worklist"] },
);
