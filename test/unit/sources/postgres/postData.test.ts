import { describe, expect, it } from 'vitest';
import type { ArchiveTocEntry } from '../../../../src/sources/postgres/archiveRows.js';
import {
  addConstraintSql,
  createIndexSql,
  parseUniqueConstraint,
  planPostData,
} from '../../../../src/sources/postgres/postData.js';

const constraint = (defn: string, tablespace = ''): ArchiveTocEntry => ({
  desc: 'CONSTRAINT',
  defn,
  tablespace,
  section: 4,
  copyStmt: '',
  namespace: 'public',
  tag: 'c',
});

describe('post-data plan of a streamed PostgreSQL restore', () => {
  it('splits a simple PRIMARY KEY into a unique index and ADD CONSTRAINT … USING INDEX', () => {
    const c = parseUniqueConstraint(
      7,
      constraint(
        'ALTER TABLE ONLY public.pgbench_accounts\n    ADD CONSTRAINT pgbench_accounts_pkey PRIMARY KEY (aid);\n',
      ),
    );
    expect(c).toEqual({
      dumpId: 7,
      table: 'public.pgbench_accounts',
      name: 'pgbench_accounts_pkey',
      kind: 'PRIMARY KEY',
      columns: 'aid',
      tablespace: '',
    });
    expect(createIndexSql(c!)).toBe(
      'CREATE UNIQUE INDEX pgbench_accounts_pkey ON public.pgbench_accounts USING btree (aid)',
    );
    expect(addConstraintSql(c!)).toBe(
      'ALTER TABLE ONLY public.pgbench_accounts ADD CONSTRAINT pgbench_accounts_pkey PRIMARY KEY USING INDEX pgbench_accounts_pkey',
    );
  });

  it('keeps quoted names as pg_dump quoted them, and the tablespace of the index', () => {
    const c = parseUniqueConstraint(
      1,
      constraint(
        'ALTER TABLE ONLY "My ""S"".x"."T (1)"\n    ADD CONSTRAINT "u ü" UNIQUE ("a b", c2, "Ä");\n',
        'fast disk',
      ),
    );
    expect(c).toMatchObject({
      table: '"My ""S"".x"."T (1)"',
      name: '"u ü"',
      kind: 'UNIQUE',
      columns: '"a b", c2, "Ä"',
    });
    expect(createIndexSql(c!)).toBe(
      'CREATE UNIQUE INDEX "u ü" ON "My ""S"".x"."T (1)" USING btree ("a b", c2, "Ä") TABLESPACE "fast disk"',
    );
  });

  it('takes a quoted name with SQL in it as one identifier', () => {
    const c = parseUniqueConstraint(
      1,
      constraint(
        'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY ("a"")); DROP TABLE x; --");\n',
      ),
    );
    expect(c?.columns).toBe('"a"")); DROP TABLE x; --"');
  });

  it('leaves every other form of a constraint to pg_restore', () => {
    const others = [
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id) INCLUDE (v);\n',
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_v_key UNIQUE (v) DEFERRABLE;\n',
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_v_key UNIQUE NULLS NOT DISTINCT (v);\n',
      "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id) WITH (fillfactor='70');\n",
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\nALTER TABLE public.t CLUSTER ON t_pkey;\n',
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_fk FOREIGN KEY (a) REFERENCES public.u(id);\n',
      "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\nCOMMENT ON TABLE public.t IS 'x';\n",
      'ALTER TABLE public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n',
      'ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (a); DROP TABLE x; --);\n',
    ];
    for (const defn of others) expect(parseUniqueConstraint(1, constraint(defn)), defn).toBeUndefined();
    const index = { ...constraint('CREATE UNIQUE INDEX i ON public.t USING btree (a);\n'), desc: 'INDEX' };
    expect(parseUniqueConstraint(1, index)).toBeUndefined();
  });

  it('runs stretches of other entries through pg_restore in the archive order, around the split constraints', () => {
    const pk = (table: string) =>
      constraint(`ALTER TABLE ONLY public.${table}\n    ADD CONSTRAINT ${table}_pkey PRIMARY KEY (id);\n`);
    const entries = new Map<number, ArchiveTocEntry>([
      [10, pk('a')],
      [11, pk('parted')],
      [12, pk('b')],
      [13, { ...constraint('CREATE INDEX b_v ON public.b USING btree (v);\n'), desc: 'INDEX' }],
      [
        14,
        constraint(
          'ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (a) REFERENCES public.a(id);\n',
        ),
      ],
    ]);
    const list = [
      '10; 2606 1 CONSTRAINT public a a_pkey postgres',
      '11; 2606 2 CONSTRAINT public parted parted_pkey postgres',
      '12; 2606 3 CONSTRAINT public b b_pkey postgres',
      '13; 1259 4 INDEX public b_v postgres',
      '14; 2606 5 FK CONSTRAINT public c c_fk postgres',
      '15; 0 0 COMMENT public CONSTRAINT b_pkey postgres',
    ];
    const plan = planPostData(list, entries, (c) => c.table !== 'public.parted');
    expect(plan.prebuild.map((c) => c.dumpId)).toEqual([10, 12]);
    expect(
      plan.steps.map((s) =>
        s.kind === 'pg_restore' ? s.listLines.map((l) => l.split(';')[0]) : s.constraint.dumpId,
      ),
    ).toEqual([10, ['11'], 12, ['13', '14', '15']]);
  });

  it('restores everything through pg_restore when the TOC could not be read', () => {
    const plan = planPostData(['10; 2606 1 CONSTRAINT public a a_pkey postgres'], new Map(), () => true);
    expect(plan).toEqual({
      prebuild: [],
      steps: [{ kind: 'pg_restore', listLines: ['10; 2606 1 CONSTRAINT public a a_pkey postgres'] }],
    });
  });
});
