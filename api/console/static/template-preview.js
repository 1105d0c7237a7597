// A template's live preview: rendered by the server (`POST /v1/rulesets/preview-template`)
// exactly as a notification or nurture email to a sample lead would be, a moment after
// the last keystroke.

import { api, describe, el } from "./console.js";
import { locale, t } from "./i18n.js";

const WAIT_MS = 300;
const pending = new WeakMap();

/** Shows `template` rendered on the sample lead in `node` (debounced per node). */
export function previewInto(node, template) {
  clearTimeout(pending.get(node));
  if (!template || typeof template.subject !== "string" || typeof template.body !== "string") {
    node.replaceChildren(el("p", { class: "muted" }, t("preview.needsBoth")));
    return;
  }
  pending.set(
    node,
    setTimeout(async () => {
      try {
        const answer = await api("/v1/rulesets/preview-template", { method: "POST", query: { locale }, body: { template } });
        node.replaceChildren(
          el("p", { class: "preview-subject" }, el("strong", {}, t("preview.subject")), answer.subject),
          el("pre", { class: "preview-body" }, answer.body),
        );
      } catch (error) {
        node.replaceChildren(el("p", { class: "error" }, t("preview.failed", { reason: describe(error) })));
      }
    }, WAIT_MS),
  );
}

/** The fields a template may use, from one preview of an empty template. */
export async function templateFields() {
  try {
    const answer = await api("/v1/rulesets/preview-template", { method: "POST", body: { template: { subject: "", body: "" } } });
    return Object.keys(answer.fields);
  } catch {
    return [];
  }
}
