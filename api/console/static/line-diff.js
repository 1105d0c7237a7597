// A line diff (longest common subsequence) of two short texts, for comparing rulesets.

/** The lines of `before` and `after` as `[kind, line]`, kind " " (both), "-" or "+". */
export function diffLines(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  // common[i][j]: length of the longest common subsequence of a[i:] and b[j:].
  const common = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push([" ", a[i]]);
      i++;
      j++;
    } else if (common[i + 1][j] >= common[i][j + 1]) out.push(["-", a[i++]]);
    else out.push(["+", b[j++]]);
  }
  while (i < a.length) out.push(["-", a[i++]]);
  while (j < b.length) out.push(["+", b[j++]]);
  return out;
}

/** Only the changed lines of `diff`, each with up to `context` unchanged lines around it. */
export function withContext(diff, context = 3) {
  const keep = new Array(diff.length).fill(false);
  diff.forEach(([kind], index) => {
    if (kind === " ") return;
    for (let k = Math.max(0, index - context); k <= Math.min(diff.length - 1, index + context); k++) keep[k] = true;
  });
  const out = [];
  diff.forEach((entry, index) => {
    if (keep[index]) out.push(entry);
    else if (index > 0 && keep[index - 1]) out.push(["…", ""]);
  });
  return out;
}
