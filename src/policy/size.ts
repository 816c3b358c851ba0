/**
 * Sizes as people write them in lifeboat.yaml: `512KiB`, `16MiB`, `1GiB`, `2G`, `2048`.
 *
 * Decisions (documented in docs/configuration.md):
 * - A plain number is bytes.
 * - `KiB MiB GiB TiB` and the short `K M G T` (as lvcreate and dd read them) are powers of 1024;
 *   `KB MB GB TB` are powers of 1000, as the SI prefixes say. `B` is bytes. Case of the
 *   prefix letter is forgiven (`16mib`), the meaning of `B` vs `iB` is not.
 * - Fractions are allowed when they give whole bytes (`1.5GiB`).
 */

const binary: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
const decimal: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

export type SizeResult = { ok: true; bytes: number } | { ok: false; message: string; hint?: string };

const SIZE_HINT = 'e.g. 512KiB, 16MiB, 1GiB, 2G (binary), 500MB (decimal) or a plain number of bytes';

/** Parse a size text (or a YAML number of bytes) into bytes, or say what is wrong with it. */
export function readSize(input: unknown): SizeResult {
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input >= 0) return { ok: true, bytes: input };
    return { ok: false, message: `${input} is not a whole number of bytes`, hint: SIZE_HINT };
  }
  if (typeof input !== 'string')
    return { ok: false, message: 'expected a size such as 16MiB', hint: SIZE_HINT };
  const text = input.trim();
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text);
  if (!m) return { ok: false, message: `cannot read "${input}" as a size`, hint: SIZE_HINT };
  const [, amountText = '', unitText = ''] = m;
  const factor = factorOf(unitText);
  if (typeof factor !== 'number')
    return { ok: false, message: `"${text}": ${factor.message}`, hint: SIZE_HINT };
  const bytes = Number(amountText) * factor;
  if (!Number.isSafeInteger(bytes)) {
    return Number.isInteger(bytes)
      ? { ok: false, message: `"${text}" is too large` }
      : { ok: false, message: `"${text}" is not a whole number of bytes`, hint: SIZE_HINT };
  }
  return { ok: true, bytes };
}

function factorOf(unit: string): number | { message: string } {
  if (unit === '' || unit === 'B' || unit === 'b') return 1;
  const prefix = unit[0]!.toLowerCase();
  const rest = unit.slice(1);
  const bin = binary[prefix];
  const dec = decimal[prefix];
  if (bin === undefined || dec === undefined) return { message: `unknown unit "${unit}"` };
  if (rest === '' || rest.toLowerCase() === 'ib') return bin;
  if (rest === 'B' || rest === 'b') return dec;
  return { message: `unknown unit "${unit}"` };
}

/** Parse a size text into bytes; throws a RangeError with the reason. */
export function parseSize(input: string | number): number {
  const result = readSize(input);
  if (!result.ok) throw new RangeError(result.hint ? `${result.message} (${result.hint})` : result.message);
  return result.bytes;
}

const formatUnits: Array<[string, number]> = [
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

/** Format bytes with binary units: exact when it divides (`16MiB`), else one decimal (`1.5GiB`). */
export function formatSize(bytes: number): string {
  for (const [name, size] of formatUnits) {
    if (bytes >= size) {
      const value = bytes / size;
      return Number.isInteger(value)
        ? `${value}${name}`
        : `${(Math.round(value * 10) / 10).toString()}${name}`;
    }
  }
  return `${bytes}B`;
}
