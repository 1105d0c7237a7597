// What every console page shares: the API key (session storage only), calls to the public
// API with it, the sign-in form, the language, and small DOM helpers (formatting is i18n.js's `fmt`).

import { loadMessages, locale, setLocale, t, translate } from "./i18n.js";

const KEY_SLOT = "leadflow.apiKey";

// --- people's sign-in (issue #19, static/session.js) -----------------------------------
// A tab signed in with a key sends it as before; otherwise calls go with the session cookie
// (same origin) and, for unsafe methods, the session's CSRF token. currentUser() is for pages.
import {
  applyPreferences,
  csrfToken,
  currentUser,
  describeUser,
  forgetSession,
  offerProviders,
  resumeSession,
  signIn,
  signOut,
} from "./session.js";

export { currentUser };

function credentialsFor(method) {
  const key = sessionStorage.getItem(KEY_SLOT);
  if (key) return { headers: { Authorization: `Bearer ${key}` }, credentials: "omit" };
  const headers = {};
  if (!["GET", "HEAD"].includes(method.toUpperCase()) && csrfToken()) {
    headers["X-CSRF-Token"] = csrfToken();
  }
  return { headers, credentials: "same-origin" };
}
// --- end of people's sign-in -----------------------------------------------------------

/** An API answer other than 2xx: its status and leadflow's `{error: {code, message, details}}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || t("error.status", { status }));
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = error.details || [];
  }
}

/** Calls the public API with the signed-in key; resolves to the JSON answer, rejects with ApiError. */
export async function api(path, { method = "GET", query, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  // Accept-Language: the server words its own sentences (rule descriptions, replay
  // summaries, labels) in the console's language where it can.
  const { headers, credentials } = credentialsFor(method);
  headers["Accept-Language"] = locale;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials,
  });
  const text = await response.text();
  let answer = null;
  if (text) {
    try {
      answer = JSON.parse(text);
    } catch {
      answer = { error: { message: text } };
    }
  }
  if (response.status === 401) {
    // The key is gone or revoked: ask for one again rather than fail every call.
    const withKey = sessionStorage.getItem(KEY_SLOT);
    sessionStorage.removeItem(KEY_SLOT);
    forgetSession();
    showSignIn(withKey ? t("signIn.refused") : t("session.ended"));
  }
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

/** Builds an element: `el("a", {href: "/x", class: "y"}, "text", child)`; text is never parsed as HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table with a caption, header cells and rows of cells (strings, numbers or nodes); each
 * cell carries its header as `data-label`, shown beside the value when narrow screens turn
 * the rows into cards. */
export function table(caption, headers, rows, { empty = t("table.empty") } = {}) {
  return el(
    "table",
    {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      rows.length
        ? rows.map((cells) => el("tr", {}, cells.map((c, i) => el("td", { "data-label": headerText(headers[i]) }, c ?? "—"))))
        : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, empty)),
    ),
  );
}

function headerText(header) {
  if (header instanceof Node) return header.textContent;
  return header === undefined || header === null ? "" : String(header);
}

/** Shows `message` in the status region `node` (an element with role=status or alert). */
export function say(node, message, kind = "info") {
  node.textContent = message;
  node.dataset.kind = kind;
}

/** The message to show a user for a failed call: the API's message and each bad field. */
export function describe(error) {
  if (!(error instanceof ApiError)) return t("error.unreachable", { reason: error.message });
  const fields = error.details
    .filter((d) => d && d.message)
    .map((d) => (d.path ? `${d.path}: ${d.message}` : d.message));
  return [error.message, ...fields].join(" — ");
}

function showSignIn(message = "") {
  document.getElementById("main").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = message;
  document.getElementById("who").hidden = true;
  document.getElementById("login").focus();
  offerProviders();
}

function showPage() {
  document.getElementById("sign-in").hidden = true;
  document.getElementById("sign-out").hidden = false;
  const user = currentUser();
  const who = document.getElementById("who");
  who.hidden = user === null;
  who.textContent = user ? describeUser(user) : "";
  const main = document.getElementById("main");
  main.hidden = false;
  watchQuarantine();
}

const QUARANTINE_EVERY_MS = 30000;
let watchingQuarantine = false;

/** Keeps the banner saying how many leads wait in the quarantine (from /readyz, which
 * needs no key and names no lead), on every page, every 30 s. */
function watchQuarantine() {
  if (watchingQuarantine) return;
  watchingQuarantine = true;
  const banner = document.getElementById("quarantine-banner");
  async function check() {
    let counts = {};
    try {
      const response = await fetch("/readyz", { cache: "no-store", credentials: "omit" });
      counts = (await response.json()).quarantine || {};
    } catch {
      return; // the API is away: the pages say so themselves
    }
    const open = Object.values(counts).reduce((a, b) => a + b, 0);
    banner.hidden = open === 0;
    if (open) {
      banner.replaceChildren(
        t("quarantine.banner", {
          count: open,
          parked: counts.parked || 0,
          retrying: counts.retrying || 0,
        }),
        " ",
        el("a", { href: "/quarantine" }, t("quarantine.review")),
      );
    }
  }
  check();
  setInterval(() => {
    if (document.visibilityState === "visible") check();
  }, QUARANTINE_EVERY_MS);
}

/**
 * Starts a page: loads the words of `namespaces` (beside the shared ones) in the chosen
 * language, marks its navigation link, asks for a key when the tab has none (checking it
 * against the API before keeping it), then runs `render` once.
 */
export async function startPage(render, { namespaces = [] } = {}) {
  await loadMessages("common", ...namespaces);
  translate();
  // ---- responsive shell (i18n part): the title in the page's language, the menu button ----
  const title = t(`title.${document.body.dataset.page}`);
  if (!title.startsWith("title.")) document.title = `${title} · leadflow`;
  wireMenu();
  // ---- end of the responsive shell block ----
  const language = document.getElementById("language");
  language.value = locale;
  language.addEventListener("change", () => setLocale(language.value));
  const page = document.body.dataset.page;
  const current = document.querySelector(`[data-nav="${page === "lead" ? "leads" : page}"]`);
  if (current) current.setAttribute("aria-current", "page");

  let rendered = false;
  document.getElementById("sign-out").addEventListener("click", async () => {
    if (sessionStorage.getItem(KEY_SLOT)) sessionStorage.removeItem(KEY_SLOT);
    else await signOut();
    // A fresh page: nothing signed-in (timers, shown data) survives the key or session.
    window.location.reload();
  });
  document.getElementById("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = document.getElementById("password");
    const refused = await signIn(document.getElementById("login").value.trim(), password.value);
    password.value = "";
    if (refused) {
      document.getElementById("sign-in-error").textContent = refused;
      return;
    }
    if (rendered || applyPreferences()) {
      window.location.reload();
      return;
    }
    showPage();
    rendered = true;
    render();
  });
  document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("api-key");
    const key = input.value.trim();
    sessionStorage.setItem(KEY_SLOT, key);
    try {
      await api("/v1/projections");
    } catch (error) {
      sessionStorage.removeItem(KEY_SLOT);
      const why =
        error instanceof ApiError && error.status === 401 ? t("signIn.unknownKey") : describe(error);
      document.getElementById("sign-in-error").textContent = why;
      return;
    }
    input.value = "";
    showPage();
    if (rendered) {
      // Signed in again after a refused key: start the page afresh with the new one.
      window.location.reload();
      return;
    }
    rendered = true;
    render();
  });

  if (sessionStorage.getItem(KEY_SLOT)) {
    showPage();
    rendered = true;
    render();
    return;
  }
  if (!(await resumeSession())) {
    showSignIn();
    return;
  }
  if (applyPreferences()) {
    window.location.reload(); // in the person's own language
    return;
  }
  showPage();
  rendered = true;
  render();
}

/** The navigation's Menu button (shown on narrow screens): opens and closes the links,
 * says so in aria-expanded; Escape closes it and gives the focus back to the button. */
function wireMenu() {
  const button = document.getElementById("menu-toggle");
  const header = button.closest("header");
  const open = (yes) => {
    button.setAttribute("aria-expanded", String(yes));
    header.classList.toggle("menu-open", yes);
  };
  button.addEventListener("click", () => open(button.getAttribute("aria-expanded") !== "true"));
  header.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      open(false);
      button.focus();
    }
  });
}

/** Public settings the server wrote into the page (never secrets). */
export function pageSetting(name) {
  const meta = document.querySelector(`meta[name="leadflow-${name}"]`);
  return meta ? meta.content : "";
}

// --- issue #19, "find": an answer that is not JSON (the lead list's CSV export) ----------

/** Calls the public API like `api` (GET, the signed-in key) and resolves to the answer's
 * body as a Blob; rejects with ApiError. */
export async function apiBlob(path, { query } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_SLOT) || ""}` };
  const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
  if (!response.ok) {
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    throw new ApiError(response.status, answer);
  }
  return response.blob();
}
