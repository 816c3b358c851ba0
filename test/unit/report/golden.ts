/**
 * Golden files: a renderer's output for the fixed fixture is compared byte for byte with the
 * file under golden/. After an intended change, regenerate with UPDATE_GOLDEN=1 and review the diff.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const GOLDEN_DIR = fileURLToPath(new URL('./golden/', import.meta.url));

/** Compare `actual` with golden/NAME (or rewrite it under UPDATE_GOLDEN=1). */
export async function expectGolden(name: string, actual: string): Promise<void> {
  const path = GOLDEN_DIR + name;
  if (process.env.UPDATE_GOLDEN === '1') {
    await writeFile(path, actual);
    return;
  }
  const expected = await readFile(path, 'utf8').catch(() => {
    throw new Error(`golden file ${path} is missing: run with UPDATE_GOLDEN=1 to create it`);
  });
  expect(actual).toBe(expected);
}
