// /directory: view and edit the sales directory (SPEC §6) — teams, reps, people (managers
// and directors) and channels, plus calendars when the server keeps them — and save it whole
// with PUT /v1/directory. The server checks it (the same validation as any PUT); its 422
// errors (JSON Pointers) are shown on the fields that caused them, and nothing is saved.
// Fields this page does not know (in the document or in an entry) are sent back as loaded.

import { api, ApiError, describe, el, say, startPage } from "./console.js";
import { t } from "./i18n.js";

// Every word this page shows, from the page's catalogs (locales/<locale>/directory.js);
// made once the catalogs are loaded.
let LABELS = null;

function labels() {
  return {
    sections: {
      teams: t("directory.section.teams"),
      reps: t("directory.section.reps"),
      people: t("directory.section.people"),
      channels: t("directory.section.channels"),
      calendars: t("directory.section.calendars"),
    },
    intros: {
      teams: t("directory.intro.teams"),
      reps: t("directory.intro.reps"),
      people: t("directory.intro.people"),
      channels: t("directory.intro.channels"),
      calendars: t("directory.intro.calendars"),
    },
    fields: {
      id: t("directory.field.id"),
      name: t("directory.field.name"),
      manager: t("directory.field.manager"),
      director: t("directory.field.director"),
      regions: t("directory.field.regions"),
      channel: t("directory.field.channel"),
      calendar: t("directory.field.calendar"),
      email: t("directory.field.email"),
      team: t("directory.field.team"),
      capacity: t("directory.field.capacity"),
      active: t("directory.field.active"),
      dingtalk_user_id: t("directory.field.dingtalk_user_id"),
      wecom_user_id: t("directory.field.wecom_user_id"),
      kind: t("directory.field.kind"),
      url: t("directory.field.url"),
      time_zone: t("directory.field.time_zone"),
      hours: t("directory.field.hours"),
      holidays: t("directory.field.holidays"),
      workdays: t("directory.field.workdays"),
    },
    kinds: {
      dingtalk: t("directory.kind.dingtalk"),
      wecom: t("directory.kind.wecom"),
      slack: t("directory.kind.slack"),
      webhook: t("directory.kind.webhook"),
    },
    add: {
      teams: t("directory.add.teams"),
      reps: t("directory.add.reps"),
      people: t("directory.add.people"),
      channels: t("directory.add.channels"),
      calendars: t("directory.add.calendars"),
    },
    remove: t("directory.remove"),
    removeRow: (what, name) => t("directory.removeRow", { what, name }),
    rowName: {
      teams: t("directory.row.teams"),
      reps: t("directory.row.reps"),
      people: t("directory.row.people"),
      channels: t("directory.row.channels"),
      calendars: t("directory.row.calendars"),
    },
    choose: t("directory.choose"),
    none: t("directory.none"),
    rep: t("directory.rep"),
    person: t("directory.person"),
    missing: (id) => t("directory.missing", { id }),
    loading: t("directory.loading"),
    loaded: (d) =>
      t("directory.loaded", {
        teams: t("directory.count.teams", { count: d.teams.length }),
        reps: t("directory.count.reps", { count: d.reps.length }),
        people: t("directory.count.people", { count: (d.people || []).length }),
        channels: t("directory.count.channels", { count: (d.channels || []).length }),
      }),
    saving: t("directory.saving"),
    saved: t("directory.saved"),
    notSaved: (n) => t("directory.notSaved", { count: n }),
    unplaced: t("directory.unplaced"),
    fillHolidays: (year) => t("directory.fillHolidays", { year }),
    holidaysFilled: (n, year) => t("directory.holidaysFilled", { count: n, year }),
    holidaysUnavailable: t("directory.holidaysUnavailable"),
    year: t("directory.year"),
  };
}
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const SECTIONS = ["teams", "reps", "people", "channels"];

const status = document.getElementById("directory-status");
const errorsBox = document.getElementById("directory-errors");
const container = document.getElementById("directory-sections");

// The document as loaded (its unknown keys are sent back) and the rows being edited: each
// row is a copy of its loaded entry (its unknown keys are kept), changed field by field.
let loaded = null;
let rows = {};

function pointer(...parts) {
  return parts.map((p) => "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

function fieldId(path) {
  return "f" + path.replace(/[^A-Za-z0-9_-]/g, "-");
}

// ---- pickers ----------------------------------------------------------------------------

function personChoices() {
  return [
    ...rows.reps.map((r) => [r.id, `${r.name || r.id} (${LABELS.rep})`]),
    ...(rows.people || []).map((p) => [p.id, `${p.name || p.id} (${LABELS.person})`]),
  ].filter(([id]) => id);
}

const PICKERS = {
  manager: () => personChoices(),
  director: () => personChoices(),
  team: () => rows.teams.filter((team) => team.id).map((team) => [team.id, team.name || team.id]),
  channel: () => (rows.channels || []).filter((c) => c.id).map((c) => [c.id, `${c.id} (${LABELS.kinds[c.kind] || c.kind})`]),
  calendar: () => (rows.calendars || []).filter((c) => c.id).map((c) => [c.id, c.name || c.id]),
};
const OPTIONAL_PICKS = new Set(["channel", "calendar"]);

/** The options of a picker, keeping a value that names nobody visible (the server says why). */
function fillPicker(select, kind, value) {
  const choices = [[ "", OPTIONAL_PICKS.has(kind) ? LABELS.none : LABELS.choose], ...PICKERS[kind]()];
  if (value && !choices.some(([id]) => id === value)) choices.push([value, LABELS.missing(value)]);
  const current = [...select.options];
  if (current.length === choices.length && current.every((o, i) => o.value === choices[i][0])) {
    // Same choices: only names changed. The options stay, so a pick under way is kept.
    current.forEach((option, i) => {
      if (option.textContent !== choices[i][1]) option.textContent = choices[i][1];
    });
    return;
  }
  select.replaceChildren(...choices.map(([id, text]) => el("option", { value: id }, text)));
  select.value = value || "";
}

function refreshPickers() {
  for (const select of container.querySelectorAll("select[data-picker]")) {
    fillPicker(select, select.dataset.picker, select.value);
  }
}

// ---- fields -----------------------------------------------------------------------------

function labelled(path, key, control) {
  const id = fieldId(path);
  control.id = id;
  control.dataset.path = path;
  control.setAttribute("aria-describedby", `${id}-error`);
  return el(
    "div",
    { class: "field" },
    el("label", { for: id }, LABELS.fields[key] || key),
    control,
    el("span", { class: "field-error", id: `${id}-error` }),
  );
}

function textField(section, index, key, { optional = false, type = "text", readOnly = false } = {}) {
  const row = rows[section][index];
  const path = pointer(section, index, key);
  const input = el("input", { type, value: row[key] ?? "", readonly: readOnly, autocomplete: "off" });
  input.addEventListener("input", () => {
    row[key] = optional && input.value === "" ? null : input.value;
  });
  if (key === "id" || key === "name" || key === "kind") input.addEventListener("change", refreshPickers);
  return labelled(path, key, input);
}

function numberField(section, index, key) {
  const row = rows[section][index];
  const input = el("input", { type: "number", step: 1, value: row[key] ?? "", inputmode: "numeric" });
  input.addEventListener("input", () => {
    // A whole number goes as a number; anything else as typed, for the server to name.
    row[key] = /^-?\d+$/.test(input.value.trim()) ? Number(input.value) : input.value;
  });
  return labelled(pointer(section, index, key), key, input);
}

function checkField(section, index, key) {
  const row = rows[section][index];
  const input = el("input", { type: "checkbox", checked: row[key] !== false });
  input.addEventListener("change", () => {
    row[key] = input.checked;
  });
  return labelled(pointer(section, index, key), key, input);
}

function pickField(section, index, key, kind = key) {
  const row = rows[section][index];
  const select = el("select", { "data-picker": kind });
  fillPicker(select, kind, row[key]);
  select.addEventListener("change", () => {
    row[key] = select.value === "" && OPTIONAL_PICKS.has(kind) ? null : select.value;
  });
  return labelled(pointer(section, index, key), key, select);
}

function choiceField(section, index, key, choices) {
  const row = rows[section][index];
  const select = el("select", {}, Object.entries(choices).map(([value, text]) => el("option", { value }, text)));
  select.value = row[key];
  select.addEventListener("change", () => {
    row[key] = select.value;
    refreshPickers();
  });
  return labelled(pointer(section, index, key), key, select);
}

function regionsField(index) {
  const row = rows.teams[index];
  const input = el("input", { type: "text", value: (row.regions || []).join(", "), autocomplete: "off" });
  input.addEventListener("input", () => {
    row.regions = input.value.split(",").map((r) => r.trim()).filter(Boolean);
  });
  return labelled(pointer("teams", index, "regions"), "regions", input);
}

function linesField(section, index, key, toLines, fromLines) {
  const row = rows[section][index];
  const area = el("textarea", { rows: 4, spellcheck: "false" });
  area.value = toLines(row[key]);
  area.addEventListener("input", () => {
    row[key] = fromLines(area.value);
  });
  return labelled(pointer(section, index, key), key, area);
}

// ---- calendars (A's format; shown only when the server keeps them) ----------------------

const hoursToLines = (hours) =>
  DAYS.filter((d) => hours && hours[d] && hours[d].length)
    .map((d) => `${d} ${hours[d].map(([from, to]) => `${from}-${to}`).join(", ")}`)
    .join("\n");
function hoursFromLines(text) {
  const hours = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [day, ...rest] = line.split(/\s+/);
    hours[day.toLowerCase()] = rest.join(" ").split(",").map((span) => span.trim().split("-")).filter((s) => s[0]);
  }
  return hours;
}
const pairsToLines = (items, second) => (items || []).map((i) => `${i.date} ${i[second] ?? ""}`.trim()).join("\n");
const pairsFromLines = (second) => (text) =>
  text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const [date, ...rest] = line.split(/\s+/);
    return { date, [second]: rest.join(" ") };
  });

function holidayButton(index) {
  const year = new Date().getFullYear() + 1;
  const yearInput = el("input", { type: "number", value: year, min: 1900, max: 2200, "aria-label": LABELS.year, class: "year" });
  const button = el("button", { type: "button" }, LABELS.fillHolidays(year));
  yearInput.addEventListener("input", () => {
    button.textContent = LABELS.fillHolidays(yearInput.value);
  });
  button.addEventListener("click", async () => {
    const row = rows.calendars[index];
    try {
      const answer = await api("/v1/directory/holidays", { query: { country: "CN", year: yearInput.value } });
      const keep = (items) => (items || []).filter((i) => !String(i.date).startsWith(`${yearInput.value}-`));
      row.holidays = [...keep(row.holidays), ...answer.holidays];
      row.workdays = [...keep(row.workdays), ...(answer.workdays || [])];
      render();
      say(status, LABELS.holidaysFilled(answer.holidays.length, yearInput.value), "ok");
    } catch (error) {
      say(status, error instanceof ApiError && error.status === 404 ? LABELS.holidaysUnavailable : describe(error), "error");
    }
  });
  return el("div", { class: "field" }, yearInput, button);
}

// ---- sections ---------------------------------------------------------------------------

const BLANK = {
  teams: () => ({ id: "", name: "", manager: "", director: "", regions: [], channel: null }),
  reps: () => ({ id: "", name: "", email: "", team: rows.teams[0]?.id || "", capacity: 0, active: true }),
  people: () => ({ id: "", name: "", email: null, dingtalk_user_id: null, wecom_user_id: null }),
  channels: () => ({ id: "", kind: "webhook", url: "" }),
  calendars: () => ({ id: "", name: "", time_zone: "Asia/Shanghai", hours: {}, holidays: [], workdays: [] }),
};

function fieldsOf(section, index) {
  const isNew = !rows[section][index]._loaded;
  const id = textField(section, index, "id", { readOnly: !isNew });
  switch (section) {
    case "teams":
      return [
        id,
        textField(section, index, "name"),
        pickField(section, index, "manager"),
        pickField(section, index, "director"),
        regionsField(index),
        pickField(section, index, "channel"),
        "calendars" in rows ? pickField(section, index, "calendar") : null,
      ];
    case "reps":
      return [
        id,
        textField(section, index, "name"),
        textField(section, index, "email", { type: "email" }),
        pickField(section, index, "team"),
        numberField(section, index, "capacity"),
        checkField(section, index, "active"),
      ];
    case "people":
      return [
        id,
        textField(section, index, "name"),
        textField(section, index, "email", { optional: true, type: "email" }),
        textField(section, index, "dingtalk_user_id", { optional: true }),
        textField(section, index, "wecom_user_id", { optional: true }),
      ];
    case "channels":
      return [id, choiceField(section, index, "kind", LABELS.kinds), textField(section, index, "url", { type: "url" })];
    case "calendars":
      return [
        id,
        textField(section, index, "name"),
        textField(section, index, "time_zone"),
        linesField(section, index, "hours", hoursToLines, hoursFromLines),
        linesField(section, index, "holidays", (v) => pairsToLines(v, "name"), pairsFromLines("name")),
        linesField(section, index, "workdays", (v) => pairsToLines(v, "hours_of"), pairsFromLines("hours_of")),
        holidayButton(index),
      ];
    default:
      return [];
  }
}

function sectionNode(section) {
  const titleId = `${section}-title`;
  const list = el("ol", { class: "entries", "data-section": section });
  rows[section].forEach((row, index) => {
    const name = row.name || row.id || `#${index + 1}`;
    const remove = el(
      "button",
      { type: "button", class: "remove", "aria-label": LABELS.removeRow(LABELS.rowName[section], name) },
      LABELS.remove,
    );
    remove.addEventListener("click", () => {
      rows[section].splice(index, 1);
      render();
    });
    list.append(
      el(
        "li",
        { class: "entry", "data-path": pointer(section, index), id: fieldId(pointer(section, index)) },
        fieldsOf(section, index),
        remove,
        el("span", { class: "field-error entry-error", id: `${fieldId(pointer(section, index))}-error` }),
      ),
    );
  });
  const add = el("button", { type: "button", class: "add", "data-add": section }, LABELS.add[section]);
  add.addEventListener("click", () => {
    rows[section].push(BLANK[section]());
    render();
    const fields = container.querySelectorAll(`[data-section="${section}"] > li:last-child input`);
    if (fields.length) fields[0].focus();
  });
  return el(
    "section",
    { "aria-labelledby": titleId, "data-path": pointer(section), id: fieldId(pointer(section)) },
    el("h2", { id: titleId }, LABELS.sections[section]),
    el("p", { class: "muted" }, LABELS.intros[section]),
    el("span", { class: "field-error", id: `${fieldId(pointer(section))}-error` }),
    list,
    add,
  );
}

function sections() {
  return [...SECTIONS, ...("calendars" in rows ? ["calendars"] : [])];
}

function render() {
  container.replaceChildren(...sections().map(sectionNode));
}

// ---- load and save ----------------------------------------------------------------------

function startFrom(document) {
  loaded = document;
  rows = {};
  for (const section of [...SECTIONS, "calendars"]) {
    if (section === "calendars" && !Array.isArray(document.calendars)) continue;
    rows[section] = (document[section] || []).map((entry) => ({ ...structuredClone(entry), _loaded: true }));
  }
  render();
}

/** The document to PUT: the loaded one with each section as edited (rows in page order). */
function documentToSave() {
  const out = { ...loaded };
  for (const section of sections()) {
    out[section] = rows[section].map(({ _loaded, ...entry }) => entry);
  }
  return out;
}

function clearErrors() {
  errorsBox.replaceChildren();
  for (const node of container.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const node of container.querySelectorAll(".field-error")) node.textContent = "";
}

/** Shows each error on the field its path names (or the nearest enclosing row or section). */
function showErrors(details) {
  const unplaced = [];
  let first = null;
  for (const detail of details) {
    let path = detail.path || "";
    let target = null;
    while (path && !(target = container.querySelector(`[data-path="${CSS.escape(path)}"]`))) {
      path = path.slice(0, path.lastIndexOf("/"));
    }
    if (!target) {
      unplaced.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
      continue;
    }
    target.setAttribute("aria-invalid", "true");
    const message = document.getElementById(`${target.id}-error`);
    if (message) message.textContent = [message.textContent, detail.message].filter(Boolean).join("; ");
    first = first || target;
  }
  if (unplaced.length) {
    errorsBox.replaceChildren(el("h3", {}, LABELS.unplaced), el("ul", {}, unplaced.map((m) => el("li", {}, m))));
  }
  if (first && typeof first.focus === "function") first.focus();
}

async function load() {
  clearErrors();
  say(status, LABELS.loading);
  try {
    startFrom(await api("/v1/directory"));
  } catch (error) {
    say(status, describe(error), "error");
    return;
  }
  say(status, LABELS.loaded(loaded));
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  say(status, LABELS.saving);
  const button = document.getElementById("directory-save");
  button.disabled = true;
  try {
    await api("/v1/directory", { method: "PUT", body: documentToSave() });
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      say(status, LABELS.notSaved(error.details.length), "error");
      showErrors(error.details);
    } else {
      say(status, describe(error), "error");
    }
    return;
  } finally {
    button.disabled = false;
  }
  await load(); // what the server keeps now
  say(status, LABELS.saved, "ok");
}

startPage(async () => {
  LABELS = labels();
  document.getElementById("directory-form").addEventListener("submit", save);
  document.getElementById("directory-reload").addEventListener("click", load);
  await load();
}, { namespaces: ["directory"] });
