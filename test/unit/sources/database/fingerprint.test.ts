import { describe, expect, it } from 'vitest';
import {
  compareFingerprints,
  describeDifference,
  schemaDigestOf,
  tableChecksum,
  type DatabaseFingerprint,
  type Difference,
} from '../../../../src/sources/database/fingerprint.js';

const db = (tables: DatabaseFingerprint['tables'], schemaDigest = 'S'): DatabaseFingerprint => ({
  tables,
  schemaDigest,
});

describe('compareFingerprints', () => {
  const base = {
    shop: db({ 'public.a': { rows: 3, checksum: 'x' }, 'public.b': { rows: 0, checksum: 'e' } }),
  };

  const cases: Array<{ name: string; actual: Record<string, DatabaseFingerprint>; expected: Difference[] }> =
    [
      { name: 'identical', actual: structuredClone(base), expected: [] },
      { name: 'database missing', actual: {}, expected: [{ kind: 'database-missing', database: 'shop' }] },
      {
        name: 'extra database',
        actual: { ...structuredClone(base), crm: db({}) },
        expected: [{ kind: 'database-extra', database: 'crm' }],
      },
      {
        name: 'table missing and extra',
        actual: { shop: db({ 'public.a': { rows: 3, checksum: 'x' }, 'public.c': { rows: 1 } }) },
        expected: [
          { kind: 'table-missing', database: 'shop', table: 'public.b' },
          { kind: 'table-extra', database: 'shop', table: 'public.c' },
        ],
      },
      {
        name: 'row count wins over checksum',
        actual: {
          shop: db({ 'public.a': { rows: 4, checksum: 'y' }, 'public.b': { rows: 0, checksum: 'e' } }),
        },
        expected: [{ kind: 'row-count', database: 'shop', table: 'public.a', expected: 3, actual: 4 }],
      },
      {
        name: 'same count, other content',
        actual: {
          shop: db({ 'public.a': { rows: 3, checksum: 'y' }, 'public.b': { rows: 0, checksum: 'e' } }),
        },
        expected: [{ kind: 'checksum', database: 'shop', table: 'public.a', expected: 'x', actual: 'y' }],
      },
      {
        name: 'checksum absent on one side is not a difference',
        actual: { shop: db({ 'public.a': { rows: 3 }, 'public.b': { rows: 0 } }) },
        expected: [],
      },
      {
        name: 'schema digest',
        actual: { shop: { ...structuredClone(base.shop), schemaDigest: 'T' } },
        expected: [{ kind: 'schema', database: 'shop', expected: 'S', actual: 'T' }],
      },
    ];

  for (const c of cases) {
    it(c.name, () => {
      expect(compareFingerprints({ databases: base }, { databases: c.actual })).toEqual(c.expected);
    });
  }

  it('is not fooled by inherited property names', () => {
    const expected = { databases: { constructor: db({ toString: { rows: 1 } }) } };
    expect(compareFingerprints(expected, { databases: {} })).toEqual([
      { kind: 'database-missing', database: 'constructor' },
    ]);
    expect(
      compareFingerprints({ databases: { x: db({}) } }, { databases: { x: db({ toString: { rows: 1 } }) } }),
    ).toEqual([{ kind: 'table-extra', database: 'x', table: 'toString' }]);
  });

  it('orders differences by database, then schema, then table name', () => {
    const a = { databases: { b: db({ z: { rows: 1 }, a: { rows: 1 } }, 'S'), a: db({}, 'S') } };
    const b = { databases: { b: db({}, 'T'), a: db({}, 'T') } };
    expect(
      compareFingerprints(a, b).map((d) => `${d.database}:${d.kind}:${'table' in d ? d.table : ''}`),
    ).toEqual(['a:schema:', 'b:schema:', 'b:table-missing:a', 'b:table-missing:z']);
  });
});

describe('describeDifference', () => {
  it('says what differs, where, and both values', () => {
    expect(
      describeDifference({ kind: 'row-count', database: 'shop', table: 'public.a', expected: 3, actual: 4 }),
    ).toBe('shop: table public.a has 4 rows, the backup had 3');
    expect(describeDifference({ kind: 'table-missing', database: 'shop', table: 't' })).toMatch(/missing/);
    expect(
      describeDifference({
        kind: 'schema',
        database: 'shop',
        expected: 'a'.repeat(64),
        actual: 'b'.repeat(64),
      }),
    ).toMatch(/schema differs .*bbbbbbbbbbbb ≠ aaaaaaaaaaaa/);
  });
});

describe('tableChecksum and schemaDigestOf', () => {
  it('is a short digest of the row-hash sum', () => {
    expect(tableChecksum('-9223372036854775808')).toMatch(/^[0-9a-f]{32}$/);
    expect(tableChecksum('0')).toBe(tableChecksum('0'));
    expect(tableChecksum('12')).not.toBe(tableChecksum('21'));
  });

  it('ignores the order of catalog lines but not their content', () => {
    expect(schemaDigestOf(['b', 'a'])).toBe(schemaDigestOf(['a', 'b']));
    expect(schemaDigestOf(['a', 'b'])).not.toBe(schemaDigestOf(['a', 'c']));
    expect(schemaDigestOf(['ab'])).not.toBe(schemaDigestOf(['a', 'b']));
  });
});

describe('verificationFailure', () => {
  const result = (differences: Difference[], dryRun = false) => ({
    dryRun,
    databases: [],
    differences,
    verified: differences.length === 0,
    commands: [],
    plan: [],
    warnings: [],
  });

  it('is a policy breach (exit 4) listing each difference', async () => {
    const { verificationFailure } = await import('../../../../src/sources/database/results.js');
    const err = verificationFailure(
      result([{ kind: 'row-count', database: 'copy', table: 'public.t', expected: 3, actual: 2 }]),
    );
    expect(err?.exitCode).toBe(4);
    expect(err?.message).toContain('copy: table public.t has 2 rows, the backup had 3');
    expect(verificationFailure(result([]))).toBeUndefined();
    expect(verificationFailure(result([{ kind: 'database-missing', database: 'x' }], true))).toBeUndefined();
  });
});
