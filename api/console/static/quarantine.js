// /quarantine: the items of the quarantine (GET /v1/quarantine), each with Retry and Skip
// for the open ones; the API's refusal (a read-only key, an item handled meanwhile) is
// shown next to the item it concerns.

import { api, describe, el, format, say, startPage, table } from "./console.js";

const STAGES = {
  delivery: "Delivery to the lead's workflow",
  decision: "The lead's decisions (rules)",
};

function stage(name) {
  if (STAGES[name]) return STAGES[name];
  if (name.startsWith("projection:")) return `Read model ${name.slice("projection:".length)}`;
  return name;
}

function lastLine(text) {
  const lines = (text || "").trim().split("\n");
  return lines[lines.length - 1];
}

startPage(async () => {
  const status = document.getElementById("quarantine-status");
  const showClosed = document.getElementById("quarantine-closed");

  function actions(item) {
    if (!["retrying", "parked"].includes(item.status)) return null;
    const result = el("p", { class: "claim-result", role: "alert" });
    const act = (action) => async (event) => {
      const buttons = event.target.parentElement.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        const answer = await api(`/v1/quarantine/${item.item_id}/${action}`, { method: "POST" });
        say(result, `${action === "retry" ? "Retry" : "Skip"} asked (${answer.status}).`, "ok");
        setTimeout(load, 1500);
      } catch (error) {
        say(result, describe(error), "error");
        buttons.forEach((b) => (b.disabled = false));
      }
    };
    return el(
      "div",
      { class: "quarantine-actions", "data-item": item.item_id },
      el("button", { type: "button", onclick: act("retry") }, "Retry"),
      el("button", { type: "button", onclick: act("skip") }, "Skip"),
      result,
    );
  }

  async function load() {
    let answer;
    try {
      answer = await api("/v1/quarantine", { query: { status: showClosed.checked ? "all" : "open" } });
    } catch (error) {
      say(status, describe(error), "error");
      return;
    }
    const open = Object.values(answer.counts).reduce((a, b) => a + b, 0);
    say(
      status,
      open
        ? `${open} item(s) open: ${answer.counts.parked} parked, ${answer.counts.retrying} retrying.`
        : "Nothing waits in the quarantine.",
      open ? "error" : "ok",
    );
    document.getElementById("quarantine-table").replaceChildren(
      table(
        "Quarantine items, oldest first",
        ["Stage", "Lead", "Event", "Status", "Attempts", "Last failed", "Error", "Act"],
        answer.items.map((item) => [
          stage(item.stage),
          item.lead_id ? el("a", { href: `/leads/${item.lead_id}` }, item.lead_id) : item.stream_id,
          item.sequence ? `${item.event_type} #${item.sequence}` : item.event_type,
          item.status,
          format.count(item.attempts),
          format.time(item.last_failed_at),
          el("span", { title: item.error }, lastLine(item.error)),
          actions(item),
        ]),
        { empty: "Nothing waits in the quarantine." },
      ),
    );
  }

  showClosed.addEventListener("change", load);
  await load();
});
