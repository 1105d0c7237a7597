// The console's two languages, zh-CN and en: the words a person reads, and numbers, money
// and times formatted for the language and the user's time zone.
//
// Words live in catalogs, one per page ("namespace") and language:
// `locales/<locale>/<namespace>.js`, an ES module whose default export maps a key to a
// string with `{name}` placeholders, or to plural forms `{one, other}` chosen by `count`.
// A key missing in the chosen language falls back to English, then to the key itself.

export const LOCALES = ["zh-CN", "en"];
const LOCALE_SLOT = "leadflow.locale";
const DEFAULT_TIME_ZONE = "Asia/Shanghai";

/** The chosen language: the person's choice in this browser, else the browser's languages,
 * else the server's default (`<meta name="leadflow-locale">`), else zh-CN. */
function chooseLocale() {
  const chosen = localStorage.getItem(LOCALE_SLOT);
  if (LOCALES.includes(chosen)) return chosen;
  for (const language of navigator.languages || [navigator.language]) {
    const lower = String(language).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  const meta = document.querySelector('meta[name="leadflow-locale"]');
  return meta && LOCALES.includes(meta.content) ? meta.content : "zh-CN";
}

export const locale = chooseLocale();
let zone = document.querySelector('meta[name="leadflow-time-zone"]')?.content || DEFAULT_TIME_ZONE;
const words = new Map(); // key -> string or plural forms, in `locale`
const english = new Map();
const plurals = new Intl.PluralRules(locale);

/** Remembers `next` as this browser's language and reloads the page in it. */
export function setLocale(next) {
  if (!LOCALES.includes(next)) throw new Error(`unknown locale ${next}`);
  localStorage.setItem(LOCALE_SLOT, next);
  window.location.reload();
}

/** The time zone dates are shown in (the signed-in person's, else the server's default). */
export function timeZone() {
  return zone;
}

/** Shows dates in `name` from now on (an IANA zone, e.g. the signed-in person's). */
export function setTimeZone(name) {
  if (name) zone = name;
}

/** Loads the catalogs of `namespaces` in the chosen language (and English, for missing
 * keys); resolves once `t` knows their words. */
export async function loadMessages(...namespaces) {
  document.documentElement.lang = locale;
  const load = (language, namespace) =>
    import(`./locales/${language}/${namespace}.js`).then((module) => module.default);
  await Promise.all(
    namespaces.map(async (namespace) => {
      const [own, fallback] = await Promise.all([
        load(locale, namespace),
        locale === "en" ? null : load("en", namespace),
      ]);
      for (const [key, value] of Object.entries(fallback || own)) english.set(key, value);
      for (const [key, value] of Object.entries(own)) words.set(key, value);
    }),
  );
}

/** The words for `key` in the chosen language, with `{name}` placeholders filled from
 * `params` (and the plural form chosen by `params.count`). */
export function t(key, params = {}) {
  let entry = words.get(key) ?? english.get(key);
  if (entry === undefined) return key;
  if (typeof entry === "object") {
    const form = plurals.select(Number(params.count ?? 0));
    entry = entry[form] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

/** Puts the words into every element under `root` marked `data-i18n="key"` (its text) or
 * `data-i18n-<attribute>="key"` (e.g. `data-i18n-aria-label`, `data-i18n-placeholder`). */
export function translate(root = document) {
  for (const node of root.querySelectorAll("*")) {
    for (const { name, value } of [...node.attributes]) {
      if (name === "data-i18n") node.textContent = t(value);
      else if (name.startsWith("data-i18n-")) node.setAttribute(name.slice(10), t(value));
    }
  }
}

const cached = new Map();
function formatter(kind, options) {
  const id = `${kind}|${zone}|${JSON.stringify(options)}`;
  if (!cached.has(id)) {
    const made =
      kind === "number"
        ? new Intl.NumberFormat(locale, options)
        : kind === "relative"
          ? new Intl.RelativeTimeFormat(locale, options)
          : new Intl.DateTimeFormat(locale, { timeZone: zone, ...options });
    cached.set(id, made);
  }
  return cached.get(id);
}

const missing = (value) => value === null || value === undefined || value === "";
const DASH = "—";
const UNITS = [
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];

/** Numbers, money and times for the chosen language and time zone; each shows "—" for
 * a missing value. */
export const fmt = {
  count: (n) => (missing(n) ? DASH : formatter("number", {}).format(Number(n))),
  decimal: (n, digits = 2) =>
    missing(n) ? DASH : formatter("number", { maximumFractionDigits: digits }).format(Number(n)),
  percent: (fraction) =>
    missing(fraction)
      ? DASH
      : formatter("number", { style: "percent", maximumFractionDigits: 1 }).format(
          Number(fraction),
        ),
  /** ¥1,200,000.00 (`CNY`), $1,200.50; `compact` shows ¥120万 in zh-CN, ¥1.2M in en. */
  money(amount, currency = "CNY", { compact = false } = {}) {
    if (missing(amount)) return DASH;
    // narrowSymbol: ¥ in English too (the default writes CN¥ outside Chinese).
    const options = {
      style: "currency",
      currency: currency || "CNY",
      currencyDisplay: "narrowSymbol",
    };
    if (compact) Object.assign(options, { notation: "compact", maximumFractionDigits: 1 });
    return formatter("number", options).format(Number(amount));
  },
  /** 2026-12-08 14:00 in the user's time zone (in the locale's own order and words). */
  dateTime: (iso) =>
    missing(iso)
      ? DASH
      : formatter("date", { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)),
  date: (iso) => (missing(iso) ? DASH : formatter("date", { dateStyle: "medium" }).format(new Date(iso))),
  /** "in 3 hours" / "3小时后", "2 days ago" / "2天前", relative to `now`. */
  relative(iso, now = Date.now()) {
    if (missing(iso)) return DASH;
    const seconds = (new Date(iso).getTime() - now) / 1000;
    const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || ["minute", 60];
    return formatter("relative", { numeric: "auto" }).format(Math.round(seconds / size), unit);
  },
  /** A length of time in words: "2 h 5 min" / "2小时5分钟"; "—" when missing. */
  duration(seconds) {
    if (missing(seconds)) return DASH;
    const total = Math.max(0, Math.round(Number(seconds)));
    const parts = [];
    let left = total;
    for (const [unit, size] of UNITS) {
      const whole = Math.floor(left / size);
      if (whole && parts.length < 2) parts.push(t(`duration.${unit}`, { count: whole }));
      left -= whole * size;
    }
    if (!parts.length) parts.push(t("duration.second", { count: total }));
    return parts.join(t("duration.separator"));
  },
};
