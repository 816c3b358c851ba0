/**
 * "Did you mean …?" for typos in keys, names and values: the closest candidate by edit
 * distance (adjacent swaps count as one edit), if it is close enough to be a likely typo.
 */

/** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `word` if it is a plausible typo of it (case-insensitive), else undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const needle = word.toLowerCase();
  // Short words tolerate one edit, longer ones two (a third of the length, at most).
  const limit = Math.max(1, Math.min(2, Math.floor(needle.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) return undefined; // not a typo at all
    const distance = editDistance(needle, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= limit ? best : undefined;
}

/** A hint naming the closest candidate, or listing the candidates when none is close. */
export function suggestion(word: string, candidates: readonly string[], noun = 'allowed'): string {
  const near = closest(word, candidates);
  if (near !== undefined) return `did you mean \`${near}\`?`;
  if (candidates.length === 0) return `there is nothing ${noun} here`;
  const shown = candidates.slice(0, 12).map((c) => `\`${c}\``);
  return `${noun}: ${shown.join(', ')}${candidates.length > 12 ? ', …' : ''}`;
}
