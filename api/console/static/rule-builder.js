// The Rules tab of the rule builder: rules in priority order (highest first) with move
// up/down, stop, "when" as named triggers, conditions as rows in all/any groups, and
// actions as rows with a form for their params made from the schema. Every edit goes
// through `ctx.change(path, value)`, which rewrites the draft document (and the JSON).

import { el } from "./console.js";
import { t } from "./i18n.js";
import { button, checkbox, eventList, field, idFor, select, textInput } from "./builder-controls.js";
import { durationInput } from "./duration-input.js";

const STAGES = ["new", "MQL", "SQL", "opportunity", "won", "lost"];
const INTENTS = ["low", "medium", "high"];
const COMMON_SOURCES = ["website", "ads", "expo", "referral", "email", "wechat", "import", "partner"];
const COMMON_CHANNELS = ["web-form", "wechat", "trade-show", "phone", "email", "landing-page"];
const MAX_DEPTH = 2; // groups inside groups inside the rule's own group

/** The rules' indices in evaluation order: priority high to low, then document order. */
export function priorityOrder(rules) {
  return rules.map((r, i) => i).sort((a, b) => (rules[b].priority ?? 0) - (rules[a].priority ?? 0) || a - b);
}

function variableType(schema, name) {
  for (const v of schema.variables) {
    if (v.pattern ? new RegExp(v.pattern).test(name) : v.name === name) return v.type;
  }
  return "string";
}

function operatorsOf(schema, type) {
  return schema.operators[type] || [];
}

/** Values seen for `variable` in the draft's conditions, for suggestions. */
function valuesInUse(doc, variable) {
  const found = new Set();
  const walk = (c) => {
    if (!c || typeof c !== "object") return;
    for (const key of ["all", "any"]) if (Array.isArray(c[key])) c[key].forEach(walk);
    if (c.name === variable && typeof c.value === "string") found.add(c.value);
  };
  for (const rule of doc.rules || []) walk(rule.conditions);
  return [...found];
}

/** `<datalist>`s of known values (regions, sources, channels) shared by the value inputs. */
export function suggestionLists(doc, directory) {
  const regions = new Set((directory.teams || []).flatMap((team) => team.regions || []));
  valuesInUse(doc, "region").forEach((r) => regions.add(r));
  const lists = {
    region: [...regions],
    source: [...new Set([...valuesInUse(doc, "source"), ...COMMON_SOURCES])],
    channel: [...new Set([...valuesInUse(doc, "channel"), ...COMMON_CHANNELS])],
    task: [...new Set([...(doc.timers || []).map((timer) => timer.id), ...tasksInUse(doc)])],
  };
  return el(
    "div",
    { hidden: true },
    Object.entries(lists).map(([name, values]) => el("datalist", { id: `suggest-${name}` }, values.map((v) => el("option", { value: v })))),
  );
}

function tasksInUse(doc) {
  return (doc.rules || []).flatMap((r) => (r.actions || []).filter((a) => a.name === "create_task").map((a) => (a.params || {}).task)).filter(Boolean);
}

export function repOptions(ctx) {
  return (ctx.directory.reps || []).map((r) => [r.id, ctx.words.repLabel(r.id)]);
}

export function teamOptions(ctx) {
  return (ctx.directory.teams || []).map((team) => [team.id, team.name]);
}

export function templateOptions(ctx) {
  const own = Object.keys(ctx.doc.templates || {});
  const builtin = (ctx.schema.builtin_templates || []).filter((name) => !own.includes(name));
  return [...own.map((name) => [name, name]), ...builtin.map((name) => [name, t("builder.builtIn", { name })])];
}

export function eventOptions(ctx, extra = []) {
  const names = [...new Set([...ctx.schema.triggers.events, ...extra])];
  return names.map((n) => [n, ctx.words.event(n)]).sort((a, b) => a[1].localeCompare(b[1]));
}

function triggerOptions(ctx, current) {
  const timers = (ctx.doc.timers || []).map((timer) => [`timer.${timer.id}`, ctx.words.trigger(`timer.${timer.id}`)]);
  const events = eventOptions(ctx, (current || []).filter((n) => !n.startsWith("timer.")));
  return [...timers, ...events];
}

// ---- conditions -----------------------------------------------------------------------

function defaultValue(inputType) {
  return inputType === "numeric" ? 0 : inputType === "none" ? undefined : "";
}

function valueControl(ctx, leaf, path, label) {
  const type = variableType(ctx.schema, leaf.name);
  const op = operatorsOf(ctx.schema, type).find((o) => o.name === leaf.operator);
  const input = op ? op.input_type : "text";
  if (input === "none") return null;
  const valuePath = `${path}/value`;
  const set = (v) => ctx.change(valuePath, v);
  if (input === "numeric") {
    return textInput({ path: valuePath, value: leaf.value, type: "number", label, onChange: (v) => set(v === "" ? "" : Number(v)) });
  }
  const exact = ["equal_to", "equal_to_case_insensitive"].includes(leaf.operator);
  const pick = (options) => select({ path: valuePath, value: leaf.value, options, label, onChange: set });
  if (exact && leaf.name === "owner") return pick(repOptions(ctx));
  if (exact && leaf.name === "team") return pick(teamOptions(ctx));
  if (exact && leaf.name === "stage") return pick(STAGES.map((s) => [s, ctx.words.choice("stage", s)]));
  if (exact && leaf.name === "intent") return pick(INTENTS.map((s) => [s, ctx.words.choice("intent", s)]));
  const list = ["region", "source", "channel"].includes(leaf.name) ? `suggest-${leaf.name}` : undefined;
  return textInput({ path: valuePath, value: leaf.value, label, list, onChange: set });
}

function variableOptions(ctx) {
  const plain = ctx.schema.variables.filter((v) => !v.pattern).map((v) => [v.name, ctx.words.variable(v.name)]);
  const variants = Object.keys(ctx.doc.experiments || {}).map((x) => [`variant.${x}`, ctx.words.variable(`variant.${x}`)]);
  return [...plain, ...variants, ["attributes.", t("builder.captureAttribute")]];
}

function leafRow(ctx, leaf, path, number, onRemove) {
  const isAttribute = String(leaf.name).startsWith("attributes.");
  const setVariable = (name) => {
    const next = name === "attributes." ? "attributes.key" : name;
    const type = variableType(ctx.schema, next);
    const ops = operatorsOf(ctx.schema, type);
    const keep = ops.find((o) => o.name === leaf.operator);
    const op = keep || ops[0];
    const value = keep && variableType(ctx.schema, leaf.name) === type ? leaf.value : defaultValue(op.input_type);
    const updated = { name: next, operator: op.name };
    if (value !== undefined) updated.value = value;
    ctx.change(path, updated, { render: true });
  };
  const setOperator = (name) => {
    const op = operatorsOf(ctx.schema, variableType(ctx.schema, leaf.name)).find((o) => o.name === name);
    const updated = { ...leaf, operator: name };
    if (op.input_type === "none") delete updated.value;
    else if (updated.value === undefined || updated.value === null) updated.value = defaultValue(op.input_type);
    ctx.change(path, updated, { render: true });
  };
  const type = variableType(ctx.schema, leaf.name);
  return el(
    "li",
    { class: "condition", "data-path": path },
    select({
      path: `${path}/name`,
      value: isAttribute ? "attributes." : leaf.name,
      options: variableOptions(ctx),
      label: t("builder.condition.what", { number }),
      onChange: setVariable,
    }),
    isAttribute
      ? textInput({
          path: `${path}/name`,
          id: idFor(`${path}/name`, "key"),
          value: leaf.name.slice("attributes.".length),
          label: t("builder.condition.attribute", { number }),
          onChange: (v) => ctx.change(`${path}/name`, `attributes.${v}`),
        })
      : null,
    select({
      path: `${path}/operator`,
      value: leaf.operator,
      options: operatorsOf(ctx.schema, type).map((o) => [o.name, ctx.words.operatorOfType(o.name, type)]),
      label: t("builder.condition.test", { number }),
      onChange: setOperator,
    }),
    valueControl(ctx, leaf, path, t("builder.condition.value", { number })),
    button(t("builder.remove"), onRemove, { label: t("builder.condition.remove", { number }), kind: "small", id: idFor(path, "remove") }),
  );
}

function groupNode(ctx, group, path, depth, label) {
  const key = Array.isArray(group.any) ? "any" : "all";
  const items = group[key];
  const listPath = `${path}/${key}`;
  const remove = (index) => () => ctx.change(listPath, items.filter((_, i) => i !== index), { render: true });
  const rows = items.map((child, index) => {
    const childPath = `${listPath}/${index}`;
    const number = `${label}.${index + 1}`;
    if (child && (Array.isArray(child.all) || Array.isArray(child.any))) {
      return el(
        "li",
        { class: "nested" },
        groupNode(ctx, child, childPath, depth + 1, number),
        button(t("builder.group.remove"), remove(index), { label: t("builder.group.removeNumbered", { number }), kind: "small", id: idFor(childPath, "remove") }),
      );
    }
    return leafRow(ctx, child || {}, childPath, number, remove(index));
  });
  const firstVariable = ctx.schema.variables.find((v) => v.name === "source") || ctx.schema.variables[0];
  const firstOp = operatorsOf(ctx.schema, firstVariable.type)[0];
  const newLeaf = { name: firstVariable.name, operator: firstOp.name };
  if (defaultValue(firstOp.input_type) !== undefined) newLeaf.value = defaultValue(firstOp.input_type);
  return el(
    "div",
    { class: "cond-group", "data-path": path, role: "group", "aria-label": t("builder.group.label", { number: label }) },
    el(
      "span",
      { class: "match" },
      select({
        path: listPath,
        id: idFor(path, "match"),
        value: key,
        options: [
          ["all", t("builder.group.all")],
          ["any", t("builder.group.any")],
        ],
        label: t("builder.group.match", { number: label }),
        onChange: (v) => ctx.change(path, { [v]: items }, { render: true }),
      }),
      items.length ? "" : el("span", { class: "muted" }, key === "all" ? t("builder.group.alwaysTrue") : t("builder.group.neverTrue")),
    ),
    rows.length ? el("ol", {}, rows) : null,
    el(
      "span",
      { class: "row-buttons" },
      button(t("builder.condition.add"), () => ctx.change(listPath, [...items, newLeaf], { render: true }), { kind: "small", id: idFor(path, "add") }),
      depth < MAX_DEPTH
        ? button(t("builder.group.add"), () => ctx.change(listPath, [...items, { any: [newLeaf] }], { render: true }), { kind: "small", id: idFor(path, "add-group") })
        : null,
    ),
  );
}

function conditionsNode(ctx, rule, path) {
  const conditions = rule.conditions || { all: [] };
  if (Array.isArray(conditions.all) || Array.isArray(conditions.any)) return groupNode(ctx, conditions, `${path}/conditions`, 0, "1");
  // A single condition at the top: shown as a row; adding one makes a group of both.
  return el(
    "div",
    { class: "cond-group" },
    el("ol", {}, leafRow(ctx, conditions, `${path}/conditions`, "1", () => ctx.change(`${path}/conditions`, { all: [] }, { render: true }))),
    button(t("builder.condition.add"), () => ctx.change(`${path}/conditions`, { all: [conditions, { ...conditions }] }, { render: true }), { kind: "small" }),
  );
}

// ---- actions --------------------------------------------------------------------------

function paramDefault(ctx, name, rawSchema) {
  if (rawSchema.default !== undefined) return undefined; // optional: left out
  const schema = unwrapped(rawSchema);
  if (schema.enum) return schema.enum[0];
  if (name === "rep") return (ctx.directory.reps || [])[0]?.id ?? "";
  if (name === "team") return (ctx.directory.teams || [])[0]?.id ?? "";
  if (schema.format === "duration") return "PT24H";
  if (name === "template") return templateOptions(ctx)[0]?.[0] ?? "";
  if (name === "sequence") return Object.keys(ctx.doc.sequences || {})[0] ?? "";
  if (name === "experiment") return Object.keys(ctx.doc.experiments || {})[0] ?? "";
  if (name === "to") return "owner";
  if (schema.type === "integer" || schema.type === "number") return 0;
  if (schema.type === "boolean") return false;
  return "";
}

/** A param's schema without the `null` an optional param allows; a `const` as an enum. */
function unwrapped(schema) {
  const options = (schema.anyOf || []).filter((s) => s.type !== "null");
  const inner = options.length === 1 ? { ...schema, ...options[0], anyOf: undefined } : schema;
  return inner.const !== undefined ? { ...inner, enum: [inner.const] } : inner;
}

function paramControl(ctx, action, name, rawSchema, path, required, label) {
  const schema = unwrapped(rawSchema);
  const value = (action.params || {})[name];
  const set = (v, render = false) => ctx.change(path, !required && (v === "" || v === null) ? undefined : v, { render });
  const pick = (options, blank) => select({ path, value, options, label, blank: required ? undefined : blank, onChange: (v) => set(v) });
  if (schema.format === "duration") return durationInput({ id: idFor(path), label, value, path, onChange: (v) => set(v) });
  if (schema.enum) return field(label, pick(schema.enum.map((v) => [v, ctx.words.choice(name, v)]), t("builder.none")));
  if (name === "rep") return field(label, pick(repOptions(ctx)));
  if (name === "team") return field(label, pick(teamOptions(ctx)));
  if (name === "template") return field(label, pick(templateOptions(ctx)));
  if (name === "sequence") return field(label, pick(Object.keys(ctx.doc.sequences || {}).map((s) => [s, s]), t("builder.everySequence")));
  if (name === "experiment") return field(label, pick(Object.keys(ctx.doc.experiments || {}).map((s) => [s, s])));
  if (name === "to") {
    const people = [
      ["owner", t("builder.to.owner")],
      ["manager", t("builder.to.manager")],
      ["director", t("builder.to.director")],
      ["team", t("builder.to.team")],
    ].map(([v, text]) => [v, ctx.words.choice("to", v) === v ? text : ctx.words.choice("to", v)]);
    const reps = (ctx.directory.reps || []).map((r) => [`rep:${r.id}`, t("builder.to.rep", { rep: ctx.words.repLabel(r.id) })]);
    return field(label, pick([...people, ...reps]));
  }
  if (name === "channel") {
    const channels = (ctx.directory.channels || []).map((c) => [c.id, `${c.id} (${c.kind})`]);
    return field(label, pick([["email", t("builder.channel.email")], ...channels], t("builder.channel.usual")));
  }
  if (schema.type === "boolean") return checkbox({ path, checked: value, label, onChange: (v) => set(v) });
  if (schema.type === "integer" || schema.type === "number")
    return field(label, textInput({ path, value, type: "number", onChange: (v) => set(v === "" ? "" : Number(v)) }));
  const list = name === "task" ? "suggest-task" : undefined;
  return field(label, textInput({ path, value, list, onChange: (v) => set(v) }));
}

function actionRow(ctx, action, path, number, actions, listPath) {
  const spec = ctx.schema.actions.find((a) => a.name === action.name);
  const setName = (name) => {
    const params = {};
    const schema = ctx.schema.actions.find((a) => a.name === name).params;
    for (const [param, property] of Object.entries(schema.properties || {})) {
      const value = paramDefault(ctx, param, property);
      if (value !== undefined) params[param] = value;
    }
    ctx.change(path, { name, params }, { render: true });
  };
  const params = spec ? Object.entries(spec.params.properties || {}) : [];
  const required = new Set(spec ? spec.params.required || [] : []);
  return el(
    "li",
    { class: "action", "data-path": path },
    select({
      path: `${path}/name`,
      value: action.name,
      options: ctx.schema.actions.map((a) => [a.name, ctx.words.action(a.name)]),
      label: t("builder.action.label", { number }),
      onChange: setName,
    }),
    el(
      "span",
      { class: "params", "data-path": `${path}/params` },
      params.map(([name, property]) =>
        paramControl(ctx, action, name, property, `${path}/params/${name}`, required.has(name), ctx.words.param(action.name, name)),
      ),
    ),
    button(t("builder.remove"), () => ctx.change(listPath, actions.filter((_, i) => i !== number - 1), { render: true }), {
      label: t("builder.action.remove", { number }),
      kind: "small",
      id: idFor(path, "remove"),
    }),
  );
}

// ---- rules ----------------------------------------------------------------------------

function moveRule(ctx, order, position, step) {
  const rules = ctx.doc.rules;
  const a = order[position];
  const b = order[position + step];
  const pa = rules[a].priority ?? 0;
  const pb = rules[b].priority ?? 0;
  if (pa !== pb) {
    rules[a].priority = pb;
    rules[b].priority = pa;
  } else {
    // Equal priorities keep document order: swap the rules themselves.
    [rules[a], rules[b]] = [rules[b], rules[a]];
  }
  const moved = pa !== pb ? a : b;
  ctx.opened.add(`/rules/${moved}`);
  ctx.change("/rules", rules, { render: true, focus: idFor(`/rules/${moved}`, step < 0 ? "up" : "down") });
}

function ruleCard(ctx, rule, index, position, order) {
  const path = `/rules/${index}`;
  const title = rule.id || t("builder.rule.untitled", { number: index + 1 });
  const details = el(
    "details",
    { class: "rule card", "data-path": path, "data-rule": rule.id, open: ctx.opened.has(path) },
    el(
      "summary",
      {},
      el("strong", { class: "rule-title" }, title),
      " ",
      el("span", { class: "sentence" }, ctx.sentences.get(`rule:${rule.id}`) || ""),
    ),
  );
  details.addEventListener("toggle", () => (details.open ? ctx.opened.add(path) : ctx.opened.delete(path)));
  const actions = rule.actions || [];
  details.append(
    el(
      "div",
      { class: "rule-head" },
      field(t("builder.rule.id"), textInput({ path: `${path}/id`, value: rule.id, onChange: (v) => ctx.change(`${path}/id`, v) })),
      field(
        t("builder.rule.description"),
        textInput({ path: `${path}/description`, value: rule.description, onChange: (v) => ctx.change(`${path}/description`, v === "" ? undefined : v) }),
      ),
      field(t("builder.rule.priority"), textInput({ path: `${path}/priority`, value: rule.priority ?? 0, type: "number", commit: (v) => ctx.change(`${path}/priority`, Number(v) || 0, { render: true }) })),
      checkbox({ path: `${path}/stop`, checked: rule.stop, label: t("builder.rule.stop"), onChange: (v) => ctx.change(`${path}/stop`, v || undefined) }),
      el(
        "span",
        { class: "row-buttons" },
        button(t("builder.rule.up"), () => moveRule(ctx, order, position, -1), { id: idFor(path, "up"), label: t("builder.rule.upNamed", { title }) }),
        button(t("builder.rule.down"), () => moveRule(ctx, order, position, 1), { id: idFor(path, "down"), label: t("builder.rule.downNamed", { title }) }),
        button(t("builder.rule.remove"), () => ctx.change(path, undefined, { render: true }), { id: idFor(path, "remove"), label: t("builder.rule.removeNamed", { title }) }),
      ),
    ),
    el("h4", {}, t("builder.rule.when")),
    eventList({
      path: `${path}/when`,
      values: rule.when,
      options: triggerOptions(ctx, rule.when),
      label: t("builder.rule.trigger"),
      addText: t("builder.rule.addTrigger"),
      onChange: (list) => ctx.change(`${path}/when`, list, { render: true }),
    }),
    el("h4", {}, t("builder.rule.if")),
    conditionsNode(ctx, rule, path),
    el("h4", {}, t("builder.rule.then")),
    el("ol", { class: "actions", "data-path": `${path}/actions` }, actions.map((a, i) => actionRow(ctx, a, `${path}/actions/${i}`, i + 1, actions, `${path}/actions`))),
    button(
      t("builder.action.add"),
      () => {
        const first = ctx.schema.actions[0];
        const params = {};
        for (const [param, property] of Object.entries(first.params.properties || {})) {
          const value = paramDefault(ctx, param, property);
          if (value !== undefined) params[param] = value;
        }
        ctx.change(`${path}/actions`, [...actions, { name: first.name, params }], { render: true });
      },
      { kind: "small", id: idFor(path, "add-action") },
    ),
  );
  return el("li", {}, details);
}

/** Renders the Rules tab for `ctx.doc` into `panel`. */
export function renderRules(ctx, panel) {
  const rules = ctx.doc.rules || [];
  const order = priorityOrder(rules);
  const add = () => {
    const top = rules.length ? Math.max(...rules.map((r) => r.priority ?? 0)) : 0;
    const id = `rule-${rules.length + 1}`;
    ctx.opened.add(`/rules/${rules.length}`);
    ctx.change("/rules", [...rules, { id, when: ["lead.captured"], priority: top + 10, conditions: { all: [] }, actions: [] }], {
      render: true,
      focus: idFor(`/rules/${rules.length}/id`),
    });
  };
  panel.replaceChildren(
    el(
      "div",
      { class: "rule-head" },
      field(t("builder.version.name"), textInput({ path: "/name", value: ctx.doc.name, onChange: (v) => ctx.change("/name", v) })),
      field(
        t("builder.version.description"),
        textInput({ path: "/description", value: ctx.doc.description, onChange: (v) => ctx.change("/description", v === "" ? undefined : v) }),
      ),
    ),
    el("p", { class: "muted" }, t("builder.rules.intro")),
    suggestionLists(ctx.doc, ctx.directory),
    el("ol", { class: "rule-list" }, order.map((index, position) => ruleCard(ctx, rules[index], index, position, order))),
    button(t("builder.rule.add"), add, { id: "add-rule" }),
  );
  // The first and last rules cannot move further.
  const first = order[0];
  const last = order[order.length - 1];
  if (first !== undefined) panel.querySelector(`#${idFor(`/rules/${first}`, "up")}`).disabled = true;
  if (last !== undefined) panel.querySelector(`#${idFor(`/rules/${last}`, "down")}`).disabled = true;
}
