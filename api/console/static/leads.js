// /leads: find leads by search, filters and sort, save the view, export it as CSV, and
// reassign a selection in bulk. What is asked lives in the URL (it is not secret), so a view
// can be bookmarked or shared and the browser's back button works; owners and teams are
// picked by their directory names while the API gets their ids (docs/leads-search.md).

import { api, apiBlob, currentUser, describe, el, say, startPage } from "./console.js";
import { fmt, t, timeZone } from "./i18n.js";
import { deadlineInWords, loadWords } from "./work-words.js";

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 300;
// The parameters a view keeps, as the form names them.
const PARAMETERS = ["q", "owner", "team", "stage", "source", "region", "in_pool", "created_from", "created_to"];
const STAGES = ["new", "MQL", "SQL", "opportunity", "won", "lost"];
// The sources leadflow's forms and imports name; others are shown as they are.
const SOURCES = ["website", "form", "ads", "fair", "expo", "referral", "import", "phone", "wechat"];
const DEFAULT_SORT = "-created_at";
// Column → the sort it offers (null: not sortable).
const COLUMNS = [
  ["name", "name"],
  ["company", "company"],
  ["stage", "stage"],
  ["deadline", null],
  ["owner", "owner"],
  ["team", null],
  ["source", null],
  ["created", "created_at"],
];

const word = (prefix, value) => {
  const key = `leads.${prefix}.${value}`;
  const found = t(key);
  return found === key ? value : found;
};

function option(value, label, selected) {
  return el("option", { value, selected: selected ? true : undefined }, label);
}

startPage(
  async () => {
    const form = document.getElementById("filters");
    const status = document.getElementById("leads-status");
    const more = document.getElementById("more");
    const views = document.getElementById("views");
    const bulk = document.getElementById("bulk");
    const selected = new Set();
    let directory = { reps: [], teams: [], people: [] };
    let found = [];
    let cursor = null;
    let asked = 0; // answers to older questions are dropped

    // The words of pool reasons, for the deadlines that send a lead back to the pool.
    let words = { pool_reasons: {} };
    try {
      [directory, words] = await Promise.all([api("/v1/directory"), loadWords()]);
    } catch (error) {
      say(status, describe(error), "error");
    }
    const names = new Map([...directory.people, ...directory.reps].map((p) => [p.id, p.name || p.id]));
    const teamNames = new Map(directory.teams.map((team) => [team.id, team.name || team.id]));

    /** What the URL asks for: the view's parameters and the sort. */
    function current() {
      const params = new URLSearchParams(window.location.search);
      const query = {};
      for (const name of PARAMETERS) if (params.get(name)) query[name] = params.get(name);
      query.sort = params.get("sort") || DEFAULT_SORT;
      return query;
    }

    /** `query` as the API is asked it: date bounds are days in the person's time zone. */
    function zoned(query) {
      return query.created_from || query.created_to ? { ...query, tz: timeZone() } : query;
    }

    function fillPickers(query) {
      const any = t("leads.any");
      form.elements.owner.replaceChildren(
        option("", any),
        ...directory.reps.map((rep) => option(rep.id, rep.name || rep.id, rep.id === query.owner)),
      );
      form.elements.team.replaceChildren(
        option("", any),
        ...directory.teams.map((team) => option(team.id, team.name || team.id, team.id === query.team)),
      );
      form.elements.stage.replaceChildren(
        option("", any),
        ...STAGES.map((stage) => option(stage, word("stages", stage), stage === query.stage)),
      );
      const sources = query.source && !SOURCES.includes(query.source) ? [...SOURCES, query.source] : SOURCES;
      form.elements.source.replaceChildren(
        option("", any),
        ...sources.map((source) => option(source, word("sources", source), source === query.source)),
      );
      form.elements.in_pool.replaceChildren(
        option("", t("leads.either")),
        option("true", t("leads.yes"), query.in_pool === "true"),
        option("false", t("leads.no"), query.in_pool === "false"),
      );
      for (const name of ["q", "region", "created_from", "created_to"]) form.elements[name].value = query[name] || "";
      document.getElementById("bulk-rep").replaceChildren(
        option("", t("leads.chooseRep")),
        ...directory.reps.map((rep) => option(rep.id, rep.name || rep.id)),
      );
    }

    /** Puts `query` into the URL (replacing the entry while typing, adding one otherwise). */
    function ask(query, { replace = false } = {}) {
      const params = new URLSearchParams();
      for (const name of PARAMETERS) if (query[name]) params.set(name, query[name]);
      if (query.sort && query.sort !== DEFAULT_SORT) params.set("sort", query.sort);
      const url = `${window.location.pathname}${params.size ? `?${params}` : ""}`;
      if (replace) window.history.replaceState(null, "", url);
      else window.history.pushState(null, "", url);
      load(true);
    }

    function fromForm() {
      const query = { sort: current().sort };
      for (const name of PARAMETERS) if (form.elements[name].value) query[name] = form.elements[name].value.trim();
      return query;
    }

    function headerCell([column, sort], order) {
      const label = t(`leads.column.${column}`);
      if (!sort) return el("th", { scope: "col" }, label);
      const state = order === sort ? "ascending" : order === `-${sort}` ? "descending" : "none";
      const next = state === "ascending" ? `-${sort}` : state === "descending" ? sort : sort === "created_at" ? `-${sort}` : sort;
      return el(
        "th",
        { scope: "col", "aria-sort": state, "data-sort": sort },
        el("button", { type: "button", class: "sort", onclick: () => ask({ ...current(), sort: next }) }, label),
      );
    }

    function row(lead) {
      const box = el("input", {
        type: "checkbox",
        "aria-label": t("leads.select", { name: lead.name || lead.lead_id }),
        checked: selected.has(lead.lead_id) ? true : undefined,
        onchange: (event) => {
          if (event.target.checked) selected.add(lead.lead_id);
          else selected.delete(lead.lead_id);
          showBulk();
        },
      });
      const cells = [
        el("a", { href: `/leads/${lead.lead_id}` }, lead.name || lead.email || lead.phone || lead.lead_id),
        lead.company,
        word("stages", lead.stage),
        lead.next_deadline ? deadlineInWords(lead.next_deadline, words) : null,
        lead.owner ? names.get(lead.owner) || lead.owner : lead.in_pool ? t("leads.pool") : null,
        lead.team ? teamNames.get(lead.team) || lead.team : null,
        lead.source ? word("sources", lead.source) : null,
        fmt.dateTime(lead.created_at),
      ];
      return el("tr", { "data-lead": lead.lead_id }, el("td", {}, box), cells.map((c) => el("td", {}, c ?? "—")));
    }

    function render(query) {
      const headers = [el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, t("leads.selectColumn")))];
      headers.push(...COLUMNS.map((column) => headerCell(column, query.sort)));
      const body = found.length
        ? found.map(row)
        : [el("tr", {}, el("td", { colspan: COLUMNS.length + 1, class: "muted" }, t("leads.none")))];
      document
        .getElementById("leads-table")
        .replaceChildren(el("table", {}, el("caption", {}, t("leads.caption")), el("thead", {}, el("tr", {}, headers)), el("tbody", {}, body)));
    }

    async function load(fresh) {
      const query = current();
      if (fresh) {
        found = [];
        cursor = null;
        fillPickers(query);
      }
      const mine = ++asked;
      say(status, t("leads.loading"));
      let answer;
      try {
        answer = await api("/v1/leads", { query: { ...zoned(query), limit: PAGE_SIZE, cursor } });
      } catch (error) {
        if (mine === asked) say(status, describe(error), "error");
        return;
      }
      if (mine !== asked) return;
      found.push(...answer.items);
      cursor = answer.next_cursor;
      render(query);
      more.hidden = !cursor;
      say(status, t(cursor ? "leads.shownMore" : "leads.shown", { count: found.length }));
    }

    // A rep may not reassign (the API refuses it): no bar for them.
    const mayReassign = currentUser()?.role !== "rep";
    function showBulk() {
      bulk.hidden = selected.size === 0 || !mayReassign;
      document.getElementById("bulk-count").textContent = t("leads.selected", { count: selected.size });
    }

    // --- saved views -----------------------------------------------------------------------
    let saved = [];
    async function loadViews(pick = "") {
      try {
        saved = (await api("/v1/views")).views;
      } catch (error) {
        say(status, describe(error), "error");
        return;
      }
      views.replaceChildren(
        option("", t("leads.pickView")),
        ...saved.map((view) => option(view.view_id, view.name, view.view_id === pick)),
      );
      document.getElementById("view-delete").disabled = !views.value;
    }
    views.addEventListener("change", () => {
      document.getElementById("view-delete").disabled = !views.value;
      const view = saved.find((v) => v.view_id === views.value);
      if (!view) return;
      const query = { sort: view.query.sort || DEFAULT_SORT };
      for (const name of PARAMETERS) {
        const value = view.query[name];
        if (value !== undefined) query[name] = Array.isArray(value) ? value[0] : String(value);
      }
      document.getElementById("view-name").value = view.name;
      ask(query);
    });
    document.getElementById("view-save").addEventListener("click", async () => {
      const name = document.getElementById("view-name").value.trim();
      if (!name) {
        say(status, t("leads.nameTheView"), "error");
        document.getElementById("view-name").focus();
        return;
      }
      const { sort, ...rest } = zoned(current());
      const query = { ...rest, sort };
      if (query.in_pool) query.in_pool = query.in_pool === "true";
      try {
        const view = await api("/v1/views", { method: "POST", body: { name, query } });
        await loadViews(view.view_id);
        say(status, t("leads.viewSaved", { name }), "ok");
      } catch (error) {
        say(status, describe(error), "error");
      }
    });
    document.getElementById("view-delete").addEventListener("click", async () => {
      const view = saved.find((v) => v.view_id === views.value);
      if (!view) return;
      try {
        await api(`/v1/views/${view.view_id}`, { method: "DELETE" });
        await loadViews();
        say(status, t("leads.viewDeleted", { name: view.name }), "ok");
      } catch (error) {
        say(status, describe(error), "error");
      }
    });

    // --- export ----------------------------------------------------------------------------
    document.getElementById("export").addEventListener("click", async () => {
      say(status, t("leads.exporting"));
      try {
        const file = await apiBlob("/v1/leads", { query: { ...zoned(current()), format: "csv" } });
        const link = document.getElementById("export-file");
        if (link.href) URL.revokeObjectURL(link.href);
        link.href = URL.createObjectURL(file);
        link.click();
        say(status, t("leads.exported"), "ok");
      } catch (error) {
        say(status, describe(error), "error");
      }
    });

    // --- bulk reassign (the API refuses callers who may not) -------------------------------
    document.getElementById("bulk-reassign").addEventListener("click", async () => {
      const bulkStatus = document.getElementById("bulk-status");
      const rep = document.getElementById("bulk-rep").value;
      if (!rep) {
        say(bulkStatus, t("leads.chooseRepFirst"), "error");
        return;
      }
      const body = { lead_ids: [...selected], rep_id: rep, reason: document.getElementById("bulk-reason").value.trim() || t("leads.bulkReason") };
      try {
        const { results } = await api("/v1/leads/reassign", { method: "POST", body });
        const name = names.get(rep) || rep;
        const refused = results.filter((result) => result.status !== "reassigned");
        if (refused.length) {
          const why = refused.map((result) => `${result.lead_id.slice(0, 8)}: ${result.error.message}`);
          say(bulkStatus, t("leads.reassignedSome", { done: results.length - refused.length, count: results.length, name, refused: why.join("; ") }), "error");
        } else {
          say(bulkStatus, t("leads.reassigned", { count: results.length, name }), "ok");
        }
        selected.clear();
        showBulk();
        load(true);
      } catch (error) {
        say(bulkStatus, describe(error), "error");
      }
    });

    // --- asking ----------------------------------------------------------------------------
    let typing = null;
    form.elements.q.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => ask(fromForm(), { replace: true }), SEARCH_DELAY_MS);
    });
    form.addEventListener("change", (event) => {
      if (event.target.name !== "q") ask(fromForm());
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(typing);
      ask(fromForm());
    });
    window.addEventListener("popstate", () => load(true));
    more.addEventListener("click", () => load(false));

    await Promise.all([load(true), loadViews()]);
  },
  { namespaces: ["leads", "lead"] },
);
