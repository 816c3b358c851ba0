import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { initRepository, type Repository } from '../../../src/repository/repository.js';
import { newRunId, type JournalInput } from '../../../src/repository/journal.js';
import { registerSecret, clearRegisteredSecrets } from '../../../src/platform/redact.js';
import { flipByte, testOptions } from './helpers.js';

const open: Repository[] = [];
afterEach(async () => {
  clearRegisteredSecrets();
  for (const r of open.splice(0)) await r.close();
});

async function setup() {
  const storage = new MemoryStorage();
  const repo = await initRepository(storage, 'pw', testOptions({ toolVersion: '9.9.9' }));
  open.push(repo);
  return { storage, repo };
}

const run = (startedAt: string, overrides: Partial<JournalInput> = {}): JournalInput => ({
  kind: 'backup',
  job: 'web',
  startedAt,
  endedAt: startedAt,
  outcome: 'success',
  stats: { files: 3, bytes: 300 },
  snapshotIds: ['ab'.repeat(32)],
  ...overrides,
});

describe('run journal', () => {
  it('round-trips records in start-time order with defaults filled in', async () => {
    const { repo, storage } = await setup();
    const b = await repo.appendJournal(
      run('2025-01-02T00:00:00.000Z', { kind: 'drill', outcome: 'failure' }),
    );
    const a = await repo.appendJournal(run('2025-01-01T00:00:00.000Z', { details: { rtoMs: 1234 } }));
    expect(a).toMatchObject({ v: 1, host: 'test-host', toolVersion: '9.9.9' });
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    const { records, problems } = await repo.listJournal();
    expect(problems).toEqual([]);
    expect(records).toEqual([a, b]);
    const names: string[] = [];
    for await (const o of storage.list('journal/')) names.push(o.key);
    expect(names.sort()).toEqual([
      `journal/20250101T000000000Z-${a.id}`,
      `journal/20250102T000000000Z-${b.id}`,
    ]);
  });

  it('filters by start time without reading older records', async () => {
    const { repo } = await setup();
    await repo.appendJournal(run('2025-01-01T00:00:00.000Z'));
    const later = await repo.appendJournal(run('2025-03-01T00:00:00.000Z'));
    const { records } = await repo.listJournal({ since: '2025-02-01T00:00:00.000Z' });
    expect(records.map((r) => r.id)).toEqual([later.id]);
    expect((await repo.listJournal({ since: Date.parse('2025-03-01T00:00:00.000Z') })).records).toHaveLength(
      1,
    );
  });

  it('reports a corrupted record and still returns the others', async () => {
    const { repo, storage } = await setup();
    const good = await repo.appendJournal(run('2025-01-01T00:00:00.000Z'));
    const bad = await repo.appendJournal(run('2025-01-02T00:00:00.000Z'));
    const key = `journal/20250102T000000000Z-${bad.id}`;
    flipByte(storage.raw(key)!, 30, 0x10);
    // A record moved to another name fails authentication too (the name is associated data).
    const moved = `journal/20250103T000000000Z-${'0'.repeat(16)}`;
    await storage.put(moved, storage.raw(`journal/20250101T000000000Z-${good.id}`)!);
    const { records, problems } = await repo.listJournal();
    expect(records.map((r) => r.id)).toEqual([good.id]);
    expect(problems.map((p) => p.key).sort()).toEqual([key, moved]);
    expect(problems[0]!.reason).toMatch(/authentication/);
  });

  it('takes a caller-chosen run id and validates input', async () => {
    const { repo } = await setup();
    const id = newRunId();
    expect((await repo.appendJournal(run('2025-01-01T00:00:00.000Z', { id }))).id).toBe(id);
    await expect(repo.appendJournal(run('2025-01-01T00:00:00.000Z', { id: 'x' }))).rejects.toThrow(/run id/);
    await expect(repo.appendJournal(run('yesterday'))).rejects.toThrow(/not a valid time/);
    await expect(
      repo.appendJournal(run('2025-01-01T00:00:00.000Z', { kind: 'nap' as JournalInput['kind'] })),
    ).rejects.toThrow(/kind/);
  });

  it('redacts secrets in recorded errors', async () => {
    const { repo } = await setup();
    registerSecret('hunter2-secret');
    const rec = await repo.appendJournal(
      run('2025-01-01T00:00:00.000Z', {
        outcome: 'failure',
        error: {
          code: 'E_X',
          message: 'pg_dump postgres://u:hunter2-secret@db failed',
          hint: 'password=hunter2-secret',
        },
      }),
    );
    const { records } = await repo.listJournal();
    expect(JSON.stringify(records)).not.toContain('hunter2-secret');
    expect(rec.error?.message).toContain('***');
  });
});
