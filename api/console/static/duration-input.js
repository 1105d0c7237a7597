// Durations in human words: ISO 8601 (`PT72H`, `P7D`) ↔ an amount and a unit, a picker
// (number + unit select) for the rule builder, and "72 hours" for sentences.

import { el } from "./console.js";
import { t } from "./i18n.js";

const ISO = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

/** Units a picker offers, largest last; seconds only show for a duration that needs them. */
export const UNITS = [
  ["seconds", 1],
  ["minutes", 60],
  ["hours", 3600],
  ["days", 86400],
  ["weeks", 604800],
];

/** A unit's name in the chosen language ("hours", "小时"). */
function unitWords(unit) {
  const words = {
    seconds: t("duration.unit.seconds"),
    minutes: t("duration.unit.minutes"),
    hours: t("duration.unit.hours"),
    days: t("duration.unit.days"),
    weeks: t("duration.unit.weeks"),
  };
  return words[unit] || unit;
}

/** The seconds of an ISO 8601 duration (no years or months), or null if it is not one. */
export function durationSeconds(text) {
  const m = typeof text === "string" && text !== "P" && text !== "PT" ? ISO.exec(text) : null;
  if (!m) return null;
  const [w, d, h, min, s] = m.slice(1).map((x) => Number(String(x ?? 0).replace(",", ".")));
  return w * 604800 + d * 86400 + h * 3600 + min * 60 + s;
}

/** `{amount, unit}` for an ISO duration: the largest unit it is a whole number of
 * (`PT72H` → 72 hours, not 3 days: what the author wrote stays), or null. */
export function durationParts(text) {
  const seconds = durationSeconds(text);
  if (seconds === null) return null;
  if (seconds === 0) return { amount: 0, unit: /D|W/.test(text) ? "days" : /H/.test(text) ? "hours" : "minutes" };
  // Keep the unit the text uses when it has one unit only: P14D stays 14 days, not 2 weeks.
  const single = /^P(?:(\d+)W|(\d+)D|T(\d+)H|T(\d+)M|T(\d+)S)$/.exec(text);
  if (single) {
    const unit = ["weeks", "days", "hours", "minutes", "seconds"][single.slice(1).findIndex((x) => x !== undefined)];
    return { amount: Number(single.slice(1).find((x) => x !== undefined)), unit };
  }
  for (const [unit, size] of [...UNITS].reverse()) {
    if (seconds % size === 0) return { amount: seconds / size, unit };
  }
  return { amount: seconds, unit: "seconds" };
}

/** The ISO 8601 text of `amount` `unit`s: 72 hours → `PT72H`, 7 days → `P7D`. */
export function isoDuration(amount, unit) {
  const n = Math.max(0, Math.round(Number(amount) || 0));
  if (n === 0) return "PT0S";
  return { weeks: `P${n}W`, days: `P${n}D`, hours: `PT${n}H`, minutes: `PT${n}M`, seconds: `PT${n}S` }[unit];
}

/**
 * A duration picker: a number input and a unit select, labelled `label`, holding `value`
 * (ISO text) at JSON Pointer `path`; `onChange(iso)` on every edit. A text that is no
 * duration shows in a text input instead, so it can be fixed without losing it.
 */
export function durationInput({ id, label, value, path, onChange }) {
  const parts = durationParts(value);
  if (!parts) {
    const raw = el("input", {
      id,
      type: "text",
      value: value ?? "",
      "data-path": path,
      placeholder: t("duration.example"),
      oninput: (e) => onChange(e.target.value),
    });
    return el("span", { class: "duration" }, el("label", { for: id }, label), raw);
  }
  const units = UNITS.filter(([unit]) => unit !== "seconds" || parts.unit === "seconds");
  const amount = el("input", {
    id,
    type: "number",
    min: 0,
    step: 1,
    value: parts.amount,
    "data-path": path,
    class: "amount",
  });
  const unit = el(
    "select",
    { id: `${id}-unit`, "aria-label": t("duration.unitOf", { label }) },
    units.map(([name]) => el("option", { value: name, selected: name === parts.unit }, unitWords(name))),
  );
  const changed = () => onChange(isoDuration(amount.value, unit.value));
  amount.addEventListener("input", changed);
  unit.addEventListener("change", changed);
  return el("span", { class: "duration" }, el("label", { for: id }, label), amount, unit);
}
