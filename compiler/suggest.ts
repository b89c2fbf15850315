// "Did you mean": the closest known name by edit distance, for unknown fields and references.

/** Levenshtein distance, capped: returns max+1 as soon as the distance must exceed max. */
function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The candidate closest to `name`, if it is close enough to be a plausible typo; else the one
 * candidate that holds `name` as whole words, or is held by it (`keyless` -> `use_keyless`,
 * `proxy_target_url` -> `target_url`): a name another gateway uses, or a prefix left out, is
 * far in edit distance but plain in words. Several such candidates: none (a guess would mislead).
 */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  const max = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = max + 1;
  const list = [...candidates];
  for (const c of list) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase(), bestDistance - 1);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best ?? byWords(name, list);
}

const words = (s: string) =>
  s
    .toLowerCase()
    .replace(/^-+/, '')
    .split(/[_\-.]+/)
    .filter(Boolean);

/** Does `outer` hold the words of `inner`, in order and next to each other? */
function holds(outer: string[], inner: string[]): boolean {
  for (let i = 0; i + inner.length <= outer.length; i++) if (inner.every((w, j) => outer[i + j] === w)) return true;
  return false;
}

/** The one candidate whose words hold the name's (or are held by them), fewest words apart. */
function byWords(name: string, candidates: readonly string[]): string | undefined {
  const n = words(name);
  if (n.join('').length < 4) return undefined;
  let best: string[] = [];
  let bestGap = Infinity;
  for (const c of candidates) {
    const w = words(c);
    if (w.length === n.length || !(w.length > n.length ? holds(w, n) : holds(n, w)) || w.join('').length < 4) continue;
    const gap = Math.abs(w.length - n.length);
    if (gap < bestGap) [best, bestGap] = [[c], gap];
    else if (gap === bestGap) best.push(c);
  }
  return best.length === 1 ? best[0] : undefined;
}

/** " (did you mean \"x\"?)" or "". */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closest(name, candidates);
  return c === undefined ? '' : ` (did you mean "${c}"?)`;
}
