// The rule builder's other tabs: timers (start/restart/cancel events and a duration),
// nurture sequences (steps: a wait and a template; the events that end them), and
// message templates (subject and body, placeholder buttons, a live preview).

import { el } from "./console.js";
import { t } from "./i18n.js";
import { button, checkbox, eventList, field, idFor, select, textInput } from "./builder-controls.js";
import { durationInput } from "./duration-input.js";
import { eventOptions, templateOptions } from "./rule-builder.js";
import { previewInto } from "./template-preview.js";

function keysOf(object) {
  return Object.keys(object || {});
}

/** `object` with `from` renamed `to`, keeping the order of its keys. */
function renamed(object, from, to) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k === from ? to : k, v]));
}

function freshName(taken, stem) {
  let n = 1;
  while (taken.includes(`${stem}-${n}`)) n++;
  return `${stem}-${n}`;
}

// ---- timers ---------------------------------------------------------------------------

function renameTimer(ctx, index, to) {
  const from = ctx.doc.timers[index].id;
  ctx.doc.timers[index].id = to;
  // Rules that ran when the timer ran out still do.
  for (const rule of ctx.doc.rules || []) rule.when = (rule.when || []).map((w) => (w === `timer.${from}` ? `timer.${to}` : w));
  ctx.change("/timers", ctx.doc.timers, { render: true });
}

function timerCard(ctx, timer, index) {
  const path = `/timers/${index}`;
  const events = (key) => eventOptions(ctx, timer[key] || []);
  const list = (key, label, addText) =>
    eventList({
      path: `${path}/${key}`,
      values: timer[key],
      options: events(key),
      label,
      addText,
      onChange: (values) => ctx.change(`${path}/${key}`, values.length || key !== "restart_on" ? values : undefined, { render: true }),
    });
  const hasCalendar = Boolean(((ctx.schema.ruleset.$defs || {}).Timer || {}).properties?.calendar);
  return el(
    "li",
    { class: "card timer", "data-path": path, "data-timer": timer.id },
    el("h3", {}, t("forms.timer.title", { id: timer.id })),
    el("p", { class: "sentence" }, ctx.sentences.get(`timer:${timer.id}`) || ""),
    el(
      "div",
      { class: "rule-head" },
      field(t("forms.timer.id"), textInput({ path: `${path}/id`, value: timer.id, commit: (v) => renameTimer(ctx, index, v) })),
      durationInput({ id: idFor(`${path}/after`), label: t("forms.timer.after"), value: timer.after, path: `${path}/after`, onChange: (v) => ctx.change(`${path}/after`, v) }),
      hasCalendar
        ? checkbox({
            path: `${path}/calendar`,
            checked: timer.calendar === "business",
            label: t("forms.timer.business"),
            onChange: (v) => ctx.change(`${path}/calendar`, v ? "business" : undefined),
          })
        : null,
      button(t("forms.timer.remove"), () => ctx.change(path, undefined, { render: true }), { id: idFor(path, "remove"), label: t("forms.timer.removeNamed", { id: timer.id }) }),
    ),
    list("start_on", t("forms.timer.startOn"), t("forms.timer.addStart")),
    list("restart_on", t("forms.timer.restartOn"), t("forms.timer.addRestart")),
    list("cancel_on", t("forms.timer.cancelOn"), t("forms.timer.addCancel")),
  );
}

export function renderTimers(ctx, panel) {
  const timers = ctx.doc.timers || [];
  const add = () => {
    const id = freshName(timers.map((timer) => timer.id), "timer").replace("-", "_");
    ctx.change("/timers", [...timers, { id, start_on: ["lead.assigned"], cancel_on: ["lead.followed_up"], after: "PT24H" }], {
      render: true,
      focus: idFor(`/timers/${timers.length}/id`),
    });
  };
  panel.replaceChildren(
    el("p", { class: "muted" }, t("forms.timers.intro")),
    el("ol", { class: "plain" }, timers.map((timer, i) => timerCard(ctx, timer, i))),
    button(t("forms.timer.add"), add, { id: "add-timer" }),
  );
}

// ---- sequences ------------------------------------------------------------------------

function renameSequence(ctx, from, to) {
  if (!to || to === from || (ctx.doc.sequences || {})[to]) return ctx.render();
  ctx.doc.sequences = renamed(ctx.doc.sequences, from, to);
  for (const rule of ctx.doc.rules || [])
    for (const action of rule.actions || []) if (action.params && action.params.sequence === from) action.params.sequence = to;
  ctx.change("/sequences", ctx.doc.sequences, { render: true });
}

function sequenceCard(ctx, name) {
  const sequence = ctx.doc.sequences[name];
  const path = `/sequences/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const steps = sequence.steps || [];
  const stepRow = (step, i) => {
    const stepPath = `${path}/steps/${i}`;
    return el(
      "li",
      { "data-path": stepPath },
      durationInput({ id: idFor(`${stepPath}/wait`), label: i === 0 ? t("forms.step.firstWait") : t("forms.step.wait"), value: step.wait, path: `${stepPath}/wait`, onChange: (v) => ctx.change(`${stepPath}/wait`, v) }),
      field(
        t("forms.step.send"),
        select({ path: `${stepPath}/template`, value: step.template, options: templateOptions(ctx), onChange: (v) => ctx.change(`${stepPath}/template`, v) }),
      ),
      button(t("forms.step.remove"), () => ctx.change(`${path}/steps`, steps.filter((_, k) => k !== i), { render: true }), { kind: "small", id: idFor(stepPath, "remove"), label: t("forms.step.removeNumbered", { number: i + 1 }) }),
    );
  };
  return el(
    "li",
    { class: "card sequence", "data-path": path },
    el("h3", {}, t("forms.sequence.title", { name })),
    el(
      "div",
      { class: "rule-head" },
      field(t("forms.sequence.name"), textInput({ path: `${path}`, id: idFor(path, "name"), value: name, commit: (v) => renameSequence(ctx, name, v) })),
      button(t("forms.sequence.remove"), () => ctx.change(path, undefined, { render: true }), { id: idFor(path, "remove"), label: t("forms.sequence.removeNamed", { name }) }),
    ),
    el("h4", {}, t("forms.sequence.steps")),
    el("ol", { class: "steps", "data-path": `${path}/steps` }, steps.map(stepRow)),
    button(t("forms.step.add"), () => ctx.change(`${path}/steps`, [...steps, { wait: "P7D", template: templateOptions(ctx)[0]?.[0] ?? "" }], { render: true }), {
      kind: "small",
      id: idFor(path, "add-step"),
    }),
    eventList({
      path: `${path}/exit_on`,
      values: sequence.exit_on,
      options: eventOptions(ctx, sequence.exit_on || []),
      label: t("forms.sequence.exitOn"),
      addText: t("forms.sequence.addExit"),
      onChange: (values) => ctx.change(`${path}/exit_on`, values, { render: true }),
    }),
  );
}

export function renderSequences(ctx, panel) {
  const names = keysOf(ctx.doc.sequences);
  const add = () => {
    const name = freshName(names, "sequence");
    ctx.change(`/sequences/${name}`, { steps: [{ wait: "PT0S", template: templateOptions(ctx)[0]?.[0] ?? "" }] }, { render: true });
  };
  panel.replaceChildren(
    el("p", { class: "muted" }, t("forms.sequences.intro")),
    el("ol", { class: "plain" }, names.map((n) => sequenceCard(ctx, n))),
    button(t("forms.sequence.add"), add, { id: "add-sequence" }),
  );
}

// ---- templates ------------------------------------------------------------------------

const FIELDS = ["name", "company", "owner_name", "team_name", "source", "region", "lead_url", "unsubscribe_url"];

function renameTemplate(ctx, from, to) {
  if (!to || to === from || (ctx.doc.templates || {})[to]) return ctx.render();
  ctx.doc.templates = renamed(ctx.doc.templates, from, to);
  for (const rule of ctx.doc.rules || [])
    for (const action of rule.actions || []) if (action.params && action.params.template === from) action.params.template = to;
  for (const sequence of Object.values(ctx.doc.sequences || {}))
    for (const step of sequence.steps || []) if (step.template === from) step.template = to;
  ctx.change("/templates", ctx.doc.templates, { render: true });
}

function insertAt(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? start;
  input.setRangeText(text, start, end, "end");
  input.dispatchEvent(new Event("input"));
  input.focus();
}

function templateCard(ctx, name) {
  const template = ctx.doc.templates[name];
  const path = `/templates/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const preview = el("div", { class: "preview", "aria-live": "polite", "aria-label": t("forms.template.previewOf", { name }) });
  const refresh = () => previewInto(preview, ctx.doc.templates[name]);
  const subject = textInput({ path: `${path}/subject`, value: template.subject, onChange: (v) => (ctx.change(`${path}/subject`, v), refresh()) });
  const body = el("textarea", {
    id: idFor(`${path}/body`),
    rows: 6,
    "data-path": `${path}/body`,
    oninput: (e) => (ctx.change(`${path}/body`, e.target.value), refresh()),
  });
  body.value = template.body ?? "";
  let target = body;
  subject.addEventListener("focus", () => (target = subject));
  body.addEventListener("focus", () => (target = body));
  const fields = (ctx.previewFields && ctx.previewFields.length ? ctx.previewFields : FIELDS).filter((f) => !f.includes("."));
  refresh();
  return el(
    "li",
    { class: "card template", "data-path": path },
    el("h3", {}, t("forms.template.title", { name })),
    el(
      "div",
      { class: "columns" },
      el(
        "div",
        { class: "template-form" },
        field(t("forms.template.name"), textInput({ path, id: idFor(path, "name"), value: name, commit: (v) => renameTemplate(ctx, name, v) })),
        field(t("forms.template.subject"), subject),
        field(t("forms.template.body"), body),
        el(
          "div",
          { class: "placeholders", role: "group", "aria-label": t("forms.template.insertField") },
          el("span", { class: "group-label" }, t("forms.template.insertFieldLabel")),
          fields.map((f) => button(`{${f}}`, () => insertAt(target, `{${f}}`), { kind: "small", label: t("forms.template.insert", { field: f }) })),
        ),
        button(t("forms.template.remove"), () => ctx.change(path, undefined, { render: true }), { id: idFor(path, "remove"), label: t("forms.template.removeNamed", { name }) }),
      ),
      el("div", {}, el("h4", {}, t("forms.template.preview")), preview),
    ),
  );
}

export function renderTemplates(ctx, panel) {
  const names = keysOf(ctx.doc.templates);
  const builtin = (ctx.schema.builtin_templates || []).filter((name) => !names.includes(name));
  const add = () => {
    const name = freshName(names, "template");
    ctx.change(`/templates/${name}`, { subject: t("forms.template.newSubject"), body: t("forms.template.newBody") }, { render: true, focus: idFor(`/templates/${name}/subject`) });
  };
  panel.replaceChildren(
    el("p", { class: "muted" }, t("forms.templates.intro", { names: builtin.join(", ") || t("forms.none") })),
    el("ol", { class: "plain" }, names.map((n) => templateCard(ctx, n))),
    button(t("forms.template.add"), add, { id: "add-template" }),
  );
}

// ---- pool and experiments -------------------------------------------------------------

function renameExperiment(ctx, from, to) {
  if (!to || to === from || (ctx.doc.experiments || {})[to]) return ctx.render();
  ctx.doc.experiments = renamed(ctx.doc.experiments, from, to);
  for (const rule of ctx.doc.rules || [])
    for (const action of rule.actions || []) if (action.params && action.params.experiment === from) action.params.experiment = to;
  ctx.change("/experiments", ctx.doc.experiments, { render: true });
}

function experimentCard(ctx, name) {
  const path = `/experiments/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const variants = ctx.doc.experiments[name].variants || {};
  const total = Object.values(variants).reduce((sum, v) => sum + (Number(v.weight) || 0), 0);
  const row = ([variant, spec]) => {
    const variantPath = `${path}/variants/${variant.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    const share = total ? t("forms.variant.share", { percent: Math.round((100 * (Number(spec.weight) || 0)) / total) }) : "";
    return el(
      "li",
      { "data-path": variantPath },
      field(
        t("forms.variant.weight", { variant }),
        textInput({ path: `${variantPath}/weight`, type: "number", value: spec.weight, commit: (v) => ctx.change(`${variantPath}/weight`, Number(v), { render: true }) }),
      ),
      el("span", { class: "muted" }, share),
      button(t("forms.variant.remove"), () => ctx.change(variantPath, undefined, { render: true }), { kind: "small", id: idFor(variantPath, "remove"), label: t("forms.variant.removeNamed", { variant }) }),
    );
  };
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".split("").filter((l) => !(l in variants));
  return el(
    "li",
    { class: "card experiment", "data-path": path },
    el("h3", {}, t("forms.experiment.title", { name })),
    el(
      "div",
      { class: "rule-head" },
      field(t("forms.experiment.name"), textInput({ path, id: idFor(path, "name"), value: name, commit: (v) => renameExperiment(ctx, name, v) })),
      button(t("forms.experiment.remove"), () => ctx.change(path, undefined, { render: true }), { id: idFor(path, "remove"), label: t("forms.experiment.removeNamed", { name }) }),
    ),
    el("ol", { class: "steps", "data-path": `${path}/variants` }, Object.entries(variants).map(row)),
    letters.length
      ? button(t("forms.variant.add"), () => ctx.change(`${path}/variants/${letters[0]}`, { weight: 50 }, { render: true }), { kind: "small", id: idFor(path, "add-variant") })
      : null,
  );
}

export function renderOther(ctx, panel) {
  const pool = ctx.doc.pool || {};
  const names = keysOf(ctx.doc.experiments);
  const cooldown = pool.claim_cooldown
    ? durationInput({
        id: idFor("/pool/claim_cooldown"),
        label: t("forms.pool.cooldown"),
        value: pool.claim_cooldown,
        path: "/pool/claim_cooldown",
        onChange: (v) => ctx.change("/pool/claim_cooldown", v),
      })
    : null;
  panel.replaceChildren(
    el("h3", {}, t("forms.pool.title")),
    el(
      "div",
      { class: "rule-head", "data-path": "/pool" },
      checkbox({
        path: "/pool/claim_cooldown",
        id: idFor("/pool/claim_cooldown", "on"),
        checked: Boolean(pool.claim_cooldown),
        label: t("forms.pool.cooldownOn"),
        onChange: (on) => ctx.change("/pool/claim_cooldown", on ? "P2D" : undefined, { render: true }),
      }),
      cooldown,
      field(
        t("forms.pool.dailyLimit"),
        textInput({
          path: "/pool/daily_claim_limit",
          type: "number",
          value: pool.daily_claim_limit,
          commit: (v) => ctx.change("/pool/daily_claim_limit", v === "" ? undefined : Number(v)),
        }),
      ),
    ),
    el("h3", {}, t("forms.experiments.title")),
    el("p", { class: "muted" }, t("forms.experiments.intro")),
    el("ol", { class: "plain" }, names.map((n) => experimentCard(ctx, n))),
    button(
      t("forms.experiment.add"),
      () => ctx.change(`/experiments/${freshName(names, "experiment")}`, { variants: { A: { weight: 50 }, B: { weight: 50 } } }, { render: true }),
      { id: "add-experiment" },
    ),
  );
}
