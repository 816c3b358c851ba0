import { describe, expect, it } from 'vitest';
import type { ArchiveTocEntry } from '../../../../src/sources/postgres/archiveRows.js';
import { planTableData, sessionSetupSql } from '../../../../src/sources/postgres/tableData.js';

const entry = (desc: string, section: number, more: Partial<ArchiveTocEntry> = {}): ArchiveTocEntry => ({
  desc,
  defn: '',
  tablespace: '',
  section,
  copyStmt: '',
  namespace: 'public',
  tag: 't',
  ...more,
});

describe('the data section of a restore, split between lifeboat and pg_restore', () => {
  it('loads COPY table data itself, runs sequence values as SQL and leaves the rest to pg_restore', () => {
    const entries = new Map<number, ArchiveTocEntry>([
      [1, entry('ENCODING', 2, { defn: "SET client_encoding = 'UTF8';\n" })],
      [2, entry('TABLE', 2, { defn: 'CREATE TABLE public.t (a int);\n' })],
      [3, entry('TABLE DATA', 3, { copyStmt: 'COPY public.t (a) FROM stdin;\n' })],
      [4, entry('SEQUENCE SET', 3, { defn: "SELECT pg_catalog.setval('public.s', 42, true);\n" })],
      [5, entry('BLOBS', 3)],
      // A dump made with --inserts: its data is SQL, which pg_restore runs.
      [6, entry('TABLE DATA', 3)],
      [7, entry('CONSTRAINT', 4, { defn: 'ALTER TABLE ONLY public.t ADD CONSTRAINT …;\n' })],
    ]);
    const plan = planTableData(entries);
    expect([...plan.tables.keys()]).toEqual([3]);
    expect(plan.sequenceSql).toEqual(["SELECT pg_catalog.setval('public.s', 42, true);\n"]);
    expect(plan.others).toEqual(['5;', '6;']);
  });

  it("starts each session with the archive's encoding, string syntax and search_path, and row security off", () => {
    const entries = new Map<number, ArchiveTocEntry>([
      [1, entry('ENCODING', 2, { defn: "SET client_encoding = 'LATIN1';\n" })],
      [2, entry('STDSTRINGS', 2, { defn: "SET standard_conforming_strings = 'on';\n" })],
      [3, entry('SEARCHPATH', 2, { defn: "SELECT pg_catalog.set_config('search_path', '', false);\n" })],
    ]);
    const setup = sessionSetupSql(entries);
    expect(setup).toContain("SET client_encoding = 'LATIN1'");
    expect(setup).toContain("SET standard_conforming_strings = 'on'");
    expect(setup).toContain("SELECT pg_catalog.set_config('search_path', '', false)");
    expect(setup).toContain('SET row_security = off');
    expect(setup).not.toMatch(/;;/);
  });
});
