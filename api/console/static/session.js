// People signed in to the console (issue #19): the session the server keeps in an HttpOnly
// cookie (this script never sees it), the CSRF token its unsafe calls send, and who is
// signed in. A browser tab signed in with an API key instead has no session: currentUser()
// is null there.

// Its words are in the `common` catalogs (locales/<locale>/common.js, `session.*`).
import { locale, setTimeZone, t } from "./i18n.js";

let signedIn = null; // {user, csrf_token} while a session is live

/**
 * The signed-in person: {user_id, login, name, role, person_id, team, locale, time_zone},
 * or null (not signed in, or signed in with an API key).
 */
export function currentUser() {
  return signedIn ? { ...signedIn.user } : null;
}

/** The CSRF token the session's POST, PUT, PATCH and DELETE calls send, or null. */
export function csrfToken() {
  return signedIn ? signedIn.csrf_token : null;
}

/** Forgets the session on this page (the server answered 401 for it). */
export function forgetSession() {
  signedIn = null;
}

const SIGNED_IN = "leadflow_signed_in=1";

/** Asks the server who is signed in (a reloaded page); true when a session is live. The
 * server sets the SIGNED_IN cookie beside the (unreadable) session cookie: without it there
 * is nothing to ask for. */
export async function resumeSession() {
  if (!document.cookie.split("; ").includes(SIGNED_IN)) return false;
  try {
    const response = await fetch("/v1/session", { cache: "no-store", credentials: "same-origin" });
    signedIn = response.ok ? await response.json() : null;
  } catch {
    signedIn = null;
  }
  // The session ended (expired, signed out elsewhere): the marker goes with it.
  if (signedIn === null) document.cookie = "leadflow_signed_in=; Max-Age=0; Path=/";
  return signedIn !== null;
}

/** Signs in with login and password; resolves to null, or to the message saying why not. */
export async function signIn(login, password) {
  let response;
  try {
    response = await fetch("/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login, password }),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    return t("error.unreachable", { reason: error.message });
  }
  if (response.ok) {
    signedIn = await response.json();
    return null;
  }
  if (response.status === 429) {
    return t("session.tooManyTries", { seconds: response.headers.get("Retry-After") || "60" });
  }
  if (response.status === 401) return t("session.wrongCredentials");
  const answer = await response.json().catch(() => ({}));
  return (answer.error && answer.error.message) || `HTTP ${response.status}`;
}

/** Signs out: the server ends the session and clears its cookie. */
export async function signOut() {
  const token = csrfToken();
  signedIn = null;
  try {
    await fetch("/v1/session", {
      method: "DELETE",
      headers: token ? { "X-CSRF-Token": token } : {},
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch {
    // Offline: the session ends by itself (docs/access.md); the page forgets it now.
  }
}

/** Shows the sign-in buttons of the providers the server offers (DingTalk, WeCom). */
export async function offerProviders() {
  let offered = [];
  try {
    const response = await fetch("/v1/session/providers", { cache: "no-store", credentials: "omit" });
    if (response.ok) offered = (await response.json()).providers;
  } catch {
    return; // the API is away: the sign-in form says so when used
  }
  for (const name of offered) {
    const button = document.getElementById(`sign-in-${name}`);
    if (button) button.hidden = false;
  }
  document.getElementById("providers").hidden = offered.length === 0;
}

/** "Li Wei · Rep": how the header names who is signed in. */
export function describeUser(user) {
  return t("session.who", { name: user.name, role: t(`session.role.${user.role}`) });
}

/** Takes on the signed-in person's own preferences: dates in their time zone; their
 * language unless this browser chose one. True when the page must reload to speak it. */
export function applyPreferences() {
  const user = currentUser();
  if (!user) return false;
  setTimeZone(user.time_zone);
  const chosen = localStorage.getItem("leadflow.locale");
  if (chosen || !user.locale || user.locale === locale) return false;
  localStorage.setItem("leadflow.locale", user.locale);
  return true;
}
