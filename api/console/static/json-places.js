// Where each value of a JSON text is: JSON Pointer → its span in the text, so an error
// that names a path (`/rules/2/conditions/all/0/name`) can be shown at its place in the
// editor. A syntax error is thrown as a SyntaxError with the `offset` where parsing stopped,
// its message in the console's language (it is shown in the JSON tab).

import { t } from "./i18n.js";

const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

function escapeToken(token) {
  return String(token).replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Maps every JSON Pointer in `text` to `{start, end}` (a property's span starts at its key). */
export function locateValues(text) {
  const spans = new Map();
  let i = 0;

  const fail = (message) => {
    const error = new SyntaxError(message);
    error.offset = i;
    throw error;
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const match = (pattern, expected) => {
    pattern.lastIndex = i;
    const found = pattern.exec(text);
    if (!found) fail(expected);
    i += found[0].length;
    return found[0];
  };

  function value(path) {
    space();
    const start = i;
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") i++;
      else
        for (;;) {
          space();
          const keyStart = i;
          if (text[i] !== '"') fail(t("json.quotedName"));
          const key = JSON.parse(match(STRING, t("json.name")));
          space();
          if (text[i] !== ":") fail(t("json.colon"));
          i++;
          const child = `${path}/${escapeToken(key)}`;
          value(child);
          spans.get(child).start = keyStart;
          space();
          if (text[i] === ",") {
            i++;
            continue;
          }
          if (text[i] === "}") {
            i++;
            break;
          }
          fail(t("json.commaOrBrace"));
        }
    } else if (c === "[") {
      i++;
      space();
      if (text[i] === "]") i++;
      else
        for (let index = 0; ; index++) {
          value(`${path}/${index}`);
          space();
          if (text[i] === ",") {
            i++;
            continue;
          }
          if (text[i] === "]") {
            i++;
            break;
          }
          fail(t("json.commaOrBracket"));
        }
    } else if (c === '"') {
      match(STRING, t("json.string"));
    } else if (i < text.length) {
      match(LITERAL, t("json.value"));
    } else {
      fail(t("json.end"));
    }
    spans.set(path, { start, end: i });
  }

  value("");
  space();
  if (i < text.length) fail(t("json.after"));
  return spans;
}

/** The span of `pointer`, or of its nearest ancestor present in the text (for a missing key). */
export function placeOf(spans, pointer) {
  let path = pointer;
  for (;;) {
    if (spans.has(path)) return { ...spans.get(path), exact: path === pointer };
    if (path === "") return { start: 0, end: 0, exact: false };
    path = path.slice(0, path.lastIndexOf("/"));
  }
}

/** 1-based line and column of `offset` in `text`. */
export function lineAndColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}
