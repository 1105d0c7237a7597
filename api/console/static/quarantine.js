// /quarantine: the items of the quarantine (GET /v1/quarantine), each with Retry and Skip
// for the open ones; the API's refusal (a read-only key, an item handled meanwhile) is
// shown next to the item it concerns.

import { api, describe, el, say, startPage, table } from "./console.js";
import { fmt, t } from "./i18n.js";

function stage(name) {
  if (name === "delivery") return t("quarantine.stage.delivery");
  if (name === "decision") return t("quarantine.stage.decision");
  if (name.startsWith("projection:")) return t("quarantine.stage.projection", { name: name.slice("projection:".length) });
  return name;
}

function statusWords(status) {
  const words = {
    retrying: t("quarantine.status.retrying"),
    parked: t("quarantine.status.parked"),
    resolved: t("quarantine.status.resolved"),
    skipped: t("quarantine.status.skipped"),
  };
  return words[status] || status;
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
        say(result, t(action === "retry" ? "quarantine.retryAsked" : "quarantine.skipAsked", { status: statusWords(answer.status) }), "ok");
        setTimeout(load, 1500);
      } catch (error) {
        say(result, describe(error), "error");
        buttons.forEach((b) => (b.disabled = false));
      }
    };
    return el(
      "div",
      { class: "quarantine-actions", "data-item": item.item_id },
      el("button", { type: "button", onclick: act("retry") }, t("quarantine.retry")),
      el("button", { type: "button", onclick: act("skip") }, t("quarantine.skip")),
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
        ? t("quarantine.open", { count: open, parked: answer.counts.parked, retrying: answer.counts.retrying })
        : t("quarantine.nothing"),
      open ? "error" : "ok",
    );
    document.getElementById("quarantine-table").replaceChildren(
      table(
        t("quarantine.caption"),
        [
          t("quarantine.column.stage"),
          t("quarantine.column.lead"),
          t("quarantine.column.event"),
          t("quarantine.column.status"),
          t("quarantine.column.attempts"),
          t("quarantine.column.lastFailed"),
          t("quarantine.column.error"),
          t("quarantine.column.act"),
        ],
        answer.items.map((item) => [
          stage(item.stage),
          item.lead_id ? el("a", { href: `/leads/${item.lead_id}` }, item.lead_id) : item.stream_id,
          item.sequence ? `${item.event_type} #${item.sequence}` : item.event_type,
          statusWords(item.status),
          fmt.count(item.attempts),
          fmt.dateTime(item.last_failed_at),
          el("span", { title: item.error }, lastLine(item.error)),
          actions(item),
        ]),
        { empty: t("quarantine.nothing") },
      ),
    );
  }

  showClosed.addEventListener("change", load);
  await load();
}, { namespaces: ["quarantine"] });
