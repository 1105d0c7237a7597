// The rule builder's small parts: JSON Pointer reads and writes on the draft document,
// ids for controls derived from the pointer they edit, and labelled controls (select,
// text, number, checkbox, a list of event pickers) that carry `data-path`.

import { el } from "./console.js";
import { t } from "./i18n.js";

function tokens(path) {
  return path === "" ? [] : path.slice(1).split("/").map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** The value at `path` in `doc`, or undefined. */
export function getAt(doc, path) {
  let node = doc;
  for (const token of tokens(path)) {
    if (node === null || typeof node !== "object") return undefined;
    node = node[token];
  }
  return node;
}

/** Sets the value at `path` (creating objects on the way); `undefined` deletes it. */
export function setAt(doc, path, value) {
  const parts = tokens(path);
  const last = parts.pop();
  let node = doc;
  for (const token of parts) {
    if (node[token] === null || typeof node[token] !== "object") node[token] = {};
    node = node[token];
  }
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
}

/** An element id for the control editing `path` (plus a suffix for a second control). */
export function idFor(path, suffix = "") {
  return `b${path.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}${suffix ? `-${suffix}` : ""}`;
}

/** A label and its control side by side. */
export function field(label, control, { hint } = {}) {
  return el("span", { class: "field" }, el("label", { for: control.id }, label), control, hint ? el("span", { class: "muted hint" }, hint) : null);
}

/** A select of `[value, text]` options; a current value not among them is kept, marked. */
export function select({ path, value, options, onChange, id = idFor(path), label, blank }) {
  const known = options.some(([v]) => v === value);
  const all = [
    ...(blank !== undefined ? [["", blank]] : []),
    ...(known || value === undefined || value === null || value === "" ? [] : [[value, t("builder.unknownValue", { value })]]),
    ...options,
  ];
  return el(
    "select",
    { id, "data-path": path, "aria-label": label, onchange: (e) => onChange(e.target.value) },
    all.map(([v, text]) => el("option", { value: v, selected: v === (value ?? "") }, text)),
  );
}

/** A text input; `onChange` on every keystroke (`commit` once the field is left). */
export function textInput({ path, value, onChange, commit, id = idFor(path), label, list, placeholder, type = "text" }) {
  return el("input", {
    id,
    type,
    value: value ?? "",
    "data-path": path,
    "aria-label": label,
    list,
    placeholder,
    autocomplete: "off",
    oninput: onChange ? (e) => onChange(e.target.value) : undefined,
    onchange: commit ? (e) => commit(e.target.value) : undefined,
  });
}

export function checkbox({ path, checked, onChange, id = idFor(path), label }) {
  const box = el("input", { id, type: "checkbox", checked: Boolean(checked), "data-path": path, onchange: (e) => onChange(e.target.checked) });
  return el("span", { class: "check" }, box, el("label", { for: id }, label));
}

/** A small button; `label` is its accessible name when the visible text is a symbol. */
export function button(text, onClick, { label, id, kind } = {}) {
  return el("button", { type: "button", id, "aria-label": label, class: kind, onclick: onClick }, text);
}

/**
 * A list of event pickers for `values` (the array at `path`): one select per event with a
 * remove button, and an add button. `options` are `[name, words]`; `onChange(list)`.
 */
export function eventList({ path, values, options, label, addText, onChange }) {
  const list = [...(values || [])];
  const items = list.map((value, index) =>
    el(
      "li",
      {},
      select({
        path: `${path}/${index}`,
        value,
        options,
        label: t("builder.list.item", { label, number: index + 1 }),
        onChange: (v) => onChange(list.map((x, i) => (i === index ? v : x))),
      }),
      button(t("builder.remove"), () => onChange(list.filter((_, i) => i !== index)), { label: t("builder.list.remove", { label: label.toLowerCase(), number: index + 1 }), kind: "small", id: idFor(`${path}/${index}`, "remove") }),
    ),
  );
  const unused = options.find(([v]) => !list.includes(v));
  return el(
    "div",
    { class: "event-list", "data-path": path, role: "group", "aria-label": label },
    el("span", { class: "group-label" }, label),
    items.length ? el("ul", {}, items) : el("span", { class: "muted" }, t("builder.list.none")),
    button(addText, () => onChange([...list, unused ? unused[0] : options[0][0]]), { kind: "small", id: idFor(path, "add") }),
  );
}
