// Human words for a ruleset's names in the builder's pickers: events ("a lead arrives"),
// timers ("the reclaim timer runs out"), variables, operators, actions and their params,
// reps and teams by name. (Whole rules and timers are put in sentences by the server:
// `POST /v1/rulesets/describe`.) Words come from the schema's `labels`
// (rules/vocabulary.py); a name it has no words for (an attribute, a timer) is made
// readable here.

import { t } from "./i18n.js";

/** "touch_count" → "touch count"; "lead.opportunity_opened" → "lead opportunity opened". */
export function readable(name) {
  return String(name).replace(/[._-]+/g, " ").trim();
}

/** The words for a schema vocabulary: `words.event("lead.captured")` etc. */
export function wordsFor(schema, directory) {
  const labels = (schema && schema.labels) || {};
  const pick = (group, name) => (labels[group] && labels[group][name]) || null;
  const reps = new Map(((directory && directory.reps) || []).map((r) => [r.id, r]));
  const teams = new Map(((directory && directory.teams) || []).map((team) => [team.id, team]));
  const operators = new Map();
  for (const [type, list] of Object.entries((schema && schema.operators) || {}))
    for (const op of list) operators.set(`${type}:${op.name}`, op.label);
  const typeOf = (variable) => {
    for (const v of (schema && schema.variables) || []) {
      if (v.pattern ? new RegExp(v.pattern).test(variable) : v.name === variable) return v.type;
    }
    return "string";
  };
  // `labels.operators` and `labels.params` may be grouped (by type, by action) or flat.
  const grouped = (group, outer, name) => {
    const table = labels[group] || {};
    const inner = table[outer];
    if (inner && typeof inner === "object" && inner[name]) return inner[name];
    return typeof table[name] === "string" ? table[name] : null;
  };

  const words = {
    event: (name) => pick("events", name) || readable(name),
    trigger(name) {
      if (String(name).startsWith("timer.")) return t("words.timerRunsOut", { timer: readable(name.slice(6)) });
      return words.event(name);
    },
    variable: (name) => {
      if (String(name).startsWith("variant.")) return t("words.variantOf", { experiment: name.slice(8) });
      if (String(name).startsWith("attributes.")) return t("words.attribute", { name: name.slice(11) });
      return pick("variables", name) || readable(name);
    },
    /** The operator `name` as applied to `variable` (its type picks the words). */
    operator: (name, variable) => {
      const type = typeOf(variable);
      return grouped("operators", type, name) || (operators.get(`${type}:${name}`) || readable(name)).toLowerCase();
    },
    operatorOfType: (name, type) => grouped("operators", type, name) || (operators.get(`${type}:${name}`) || readable(name)).toLowerCase(),
    action: (name) => pick("actions", name) || readable(name),
    param: (action, name) => grouped("params", action, name) || pick("params", `${action}.${name}`) || readable(name),
    /** An enum value in words: `strategy` `round_robin` → "in turn". */
    choice: (group, value) => grouped("values", group, value) || readable(value),
    rep: (id) => (reps.has(id) ? reps.get(id).name : id),
    repLabel: (id) => {
      const rep = reps.get(id);
      if (!rep) return t("words.notInDirectory", { id });
      const team = teams.get(rep.team);
      const named = team ? t("words.repOfTeam", { rep: rep.name, team: team.name }) : rep.name;
      return rep.active === false ? t("words.inactive", { rep: named }) : named;
    },
    team: (id) => (teams.has(id) ? teams.get(id).name : id),
    recipient(to) {
      if (String(to).startsWith("rep:")) return words.rep(to.slice(4));
      const people = { owner: t("builder.to.owner"), manager: t("builder.to.manager"), director: t("builder.to.director"), team: t("builder.to.team") };
      return grouped("values", "to", to) || people[to] || to;
    },
    value(variable, value) {
      if (variable === "owner") return words.rep(value);
      if (variable === "team") return words.team(value);
      return JSON.stringify(value);
    },
  };
  return words;
}
