#!/usr/bin/env node
// Throughput of the repository engine: chunking alone, and the full saveBlob
// path (chunk → HMAC → dedup → zstd on worker threads → AES-GCM → pack →
// storage) on non-zero data. Run by a person, not by the test suite:
//
//   npm run build && node test/bench/repository-throughput.mjs [--gib 1] [--workers 0,1,2] [--storage null|memory|local]
//
// `null` storage discards packs (measures the CPU pipeline), `local` writes to
// a temp directory (adds the disk). --dist <dir> points at another build.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    workers: { type: 'string', default: '' },
    storage: { type: 'string', default: 'null' },
    data: { type: 'string', default: 'random,mixed' },
    dist: { type: 'string', default: new URL('../../dist', import.meta.url).pathname },
  },
});
const dist = (p) => pathToFileURL(join(resolve(values.dist), p)).href;
const { initRepository } = await import(dist('repository/repository.js'));
const { FastCdcChunker, deriveGearTable } = await import(dist('repository/chunker.js'));
const { MemoryStorage } = await import(dist('storage/memory.js'));
const { FakeClock } = await import(dist('platform/clock.js'));

const MiB = 1024 * 1024;
const total = Math.round(Number(values.gib) * 1024) * MiB;
const PIECE = 64 * 1024; // what fs.createReadStream delivers

/**
 * `total` bytes of input, generated before timing: `random` is an AES-CTR
 * keystream (incompressible, never all zero); `mixed` alternates 256 KiB of
 * text-like words with 256 KiB of keystream. Nothing repeats, so nothing dedups.
 */
function makeInput(kind) {
  const key = createHash('sha256').update(kind).digest();
  const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(total));
  if (kind === 'mixed') {
    const words = ['restore', 'backup', 'lifeboat', 'drill', 'policy', 'snapshot', '\n', 'rpo', 'rto', 'gfs'];
    const text = Buffer.alloc(4 * MiB + 64);
    for (let at = 0, i = 0; at < 4 * MiB; i++) at += text.write(words[data[i] % words.length] + ' ', at);
    for (let block = 0; block < total; block += 512 * 1024) {
      // Text from a sliding window of the text buffer, so blocks differ from each other.
      const from = (block / 512) % (3 * MiB);
      text.copy(data, block, from, from + 256 * 1024);
      data.writeUInt32LE(block / 1024, block);
    }
  }
  return data;
}

/** The input in 64 KiB pieces, like fs.createReadStream delivers a file. */
async function* stream(input) {
  for (let at = 0; at < input.length; at += PIECE) yield input.subarray(at, at + PIECE);
}

class NullStorage {
  url = 'null://';
  capabilities = { objectLock: false, conditionalCreate: false, maxConnections: 8 };
  bytes = 0;
  async put(_key, body) {
    if (body instanceof Uint8Array) this.bytes += body.length;
    else for await (const c of body) this.bytes += c.length;
  }
  async get(key) {
    throw new Error(`null storage has no ${key}`);
  }
  async stat() {
    return undefined;
  }
  async *list() {}
  async delete() {}
}

const rate = (bytes, ms) => `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
const cpu = (u) => `${((u.user + u.system) / 1000).toFixed(0)} ms CPU`;

async function chunkOnly(source) {
  const chunker = new FastCdcChunker(deriveGearTable(Buffer.alloc(32, 7)));
  const t = performance.now();
  const u = process.cpuUsage();
  let n = 0;
  for await (const _ of chunker.chunks(stream(source))) n++;
  const ms = performance.now() - t;
  return { line: `chunking only: ${rate(total, ms)} (${n} chunks, ${cpu(process.cpuUsage(u))})` };
}

async function fullPath(source, workers) {
  let dir;
  let storage;
  if (values.storage === 'memory') storage = new MemoryStorage();
  else if (values.storage === 'local') {
    const { LocalStorage } = await import(dist('storage/local.js'));
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-'));
    storage = await LocalStorage.create(pathToFileURL(join(dir, 'repo')).href);
  } else storage = new NullStorage();
  const repo = await initRepository(storage, 'bench', {
    clock: new FakeClock(0),
    host: 'bench',
    kdf: { N: 1024, r: 8, p: 1 },
    compressionWorkers: workers,
  });
  const t = performance.now();
  const u = process.cpuUsage();
  let stored = 0;
  for await (const chunk of repo.chunker().chunks(stream(source))) {
    if ((await repo.saveBlob('data', chunk)).stored) stored++;
  }
  await repo.flush();
  const ms = performance.now() - t;
  const stats = await repo.stats();
  await repo.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  const ratio = (stats.storedBytes / total).toFixed(3);
  return {
    line: `full saveBlob path, ${workers} worker(s): ${rate(total, ms)} (${stored} blobs, stored/raw ${ratio}, ${cpu(process.cpuUsage(u))} on the main process incl. workers)`,
  };
}

const workerCounts = values.workers
  ? values.workers.split(',').map(Number)
  : [0, 1, 2, Math.min(4, availableParallelism())].filter((v, i, a) => a.indexOf(v) === i);
console.log(
  `lifeboat repository throughput: ${total / MiB} MiB per run, ${availableParallelism()} cores, storage=${values.storage}`,
);
for (const kind of values.data.split(',')) {
  const source = makeInput(kind);
  console.log(`\n[${kind} data]`);
  console.log('  ' + (await chunkOnly(source)).line);
  for (const w of workerCounts) console.log('  ' + (await fullPath(source, w)).line);
}
