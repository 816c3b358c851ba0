/**
 * Dump streams in and out of the repository: a tool's stdout is cut by the
 * repository's chunker and saved blob by blob (never spooled to disk), and a
 * stored dump is read back as a stream whose size (and SHA-256, when the
 * snapshot recorded one) is checked at the end, so a restore never silently
 * consumes a different dump.
 *
 * Dumps are saved without a SHA-256 of the whole stream: every chunk is
 * checked against its keyed blob ID when it is read, the ordered list of
 * chunk IDs comes from an authenticated tree, and a restored database is
 * checked against its fingerprint. A second hash of ~500 MiB cost 0.3 s of
 * CPU per backup and per restore here.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IntegrityError } from '../../errors.js';
import type { Repo, SaveBlobResult } from '../../repository/api.js';
import type { BlobId, ContentRef } from '../../repository/tree.js';
import type { RowReaderThread } from './rowReaderWorker.js';

/**
 * The stdout buffer a dump tool is started with (ExecOptions.stdoutBuffer):
 * 1 MiB writes reach this process as 64 KiB pipe reads (~8,500 per 500 MiB)
 * instead of one wake-up per 4 KiB write (~50,000).
 */
export const DUMP_TOOL_STDOUT_BUFFER = 1024 * 1024;

/**
 * zstd level for the chunks of a dump. Measured on 1 MiB pieces here: on
 * sysbench-like dump text (random digits) level 1 compresses 384 MiB/s to
 * 2.21:1 where the repository's level 3 manages 120 MiB/s and 2.02:1; on
 * pgbench's archive 2,217 vs 1,651 MiB/s at the same ratio (~58:1). Files
 * keep level 3: on /usr/share level 1 stores 3 % more for 20 % less CPU.
 * MySQL dumps also ask for `fastFirst` (zstd −5 first, workerPool.ts
 * FAST_FIRST_LEVEL); PostgreSQL's archives of mostly blanks would only pay
 * for the extra try.
 */
export const DUMP_COMPRESSION_LEVEL = 1;

/** What saving one stream produced. */
export interface SavedStream {
  content: BlobId[];
  size: number;
  /** Hex SHA-256 of the whole stream (absent when saved with `sha256: false`). */
  sha256?: string;
  /** Plaintext bytes of blobs that were new to the repository. */
  addedBytes: number;
  /** Blobs that were new to the repository. */
  addedBlobs: number;
}

export interface SaveStreamOptions {
  /** Blob saves in flight at once (compression and encryption overlap with reading). */
  concurrency?: number;
  /** Called after each chunk with the bytes read so far. */
  onProgress?: (bytes: number) => void;
  /** Compute the SHA-256 of the whole stream (default true; dumps pass false, see above). */
  sha256?: boolean;
  /** zstd level for the stream's chunks (SaveBlobOptions.compressionLevel); the repository's by default. */
  compressionLevel?: number;
  /** SaveBlobOptions.fastFirst for the stream's chunks. */
  fastFirst?: boolean;
}

/** Chunk a stream with the repository's chunker and save every chunk as a data blob, in order. */
export async function saveStream(
  repo: Repo,
  input: Readable | AsyncIterable<Uint8Array>,
  opts: SaveStreamOptions = {},
): Promise<SavedStream> {
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const hash = opts.sha256 === false ? undefined : createHash('sha256');
  const pending: Promise<SaveBlobResult>[] = [];
  const saved: SavedStream = { content: [], size: 0, addedBytes: 0, addedBlobs: 0 };
  const settle = (r: SaveBlobResult) => {
    saved.content.push(r.id);
    if (r.stored) {
      saved.addedBytes += r.length;
      saved.addedBlobs++;
    }
  };
  try {
    for await (const chunk of repo.chunker().chunks(coalesced(input))) {
      hash?.update(chunk);
      saved.size += chunk.length;
      // The chunker's chunks own their memory: given away, not copied.
      const p = repo.saveBlob('data', chunk, {
        transfer: true,
        compressionLevel: opts.compressionLevel,
        fastFirst: opts.fastFirst,
      });
      // Observed later in order; this keeps a failure of a later save from going unhandled meanwhile.
      p.catch(() => {});
      pending.push(p);
      if (pending.length >= concurrency) settle(await (pending.shift() as Promise<SaveBlobResult>));
      opts.onProgress?.(saved.size);
    }
    while (pending.length > 0) settle(await (pending.shift() as Promise<SaveBlobResult>));
  } finally {
    await Promise.allSettled(pending);
  }
  if (hash) saved.sha256 = hash.digest('hex');
  return saved;
}

/**
 * Pieces of at least COALESCE_BYTES (but the last): a pipe is read 64 KiB at
 * a time at most (4 KiB without stdbuf, see DUMP_TOOL_STDOUT_BUFFER), and
 * every piece costs the chunker's loop its own turn through three async
 * iterators and the tap its own push. One copy into a larger buffer is
 * cheaper than those turns.
 */
const COALESCE_BYTES = 256 * 1024;

async function* coalesced(input: Readable | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let batch: Buffer | undefined;
  let filled = 0;
  for await (const piece of input as AsyncIterable<Uint8Array>) {
    if (!(piece instanceof Uint8Array)) throw new TypeError('a dump stream must be bytes, not strings');
    if (filled === 0 && piece.length >= COALESCE_BYTES) {
      yield piece;
      continue;
    }
    let at = 0;
    while (at < piece.length) {
      batch ??= Buffer.allocUnsafe(COALESCE_BYTES);
      const n = Math.min(COALESCE_BYTES - filled, piece.length - at);
      batch.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === COALESCE_BYTES) {
        yield batch;
        // The chunker keeps a reference to what it was given: the next batch is a new buffer.
        batch = undefined;
        filled = 0;
      }
    }
  }
  if (batch && filled > 0) yield batch.subarray(0, filled);
}

/**
 * Save a dump tool's output (saveStream, without a SHA-256 of the whole
 * stream) while `tap`, when given, sees every byte on its worker thread: the
 * tap's row reader hashes the rows, so this thread only drains the pipe,
 * chunks and seals.
 */
export function saveDumpStream(
  repo: Repo,
  input: AsyncIterable<Uint8Array>,
  tap: RowReaderThread | undefined,
  opts: Omit<SaveStreamOptions, 'sha256' | 'compressionLevel'> = {},
): Promise<SavedStream> {
  // The tap sees the gathered pieces (one push per 256 KiB, not per pipe read); saveStream passes them on as is.
  const gathered = coalesced(input);
  const pieces = tap ? observed(gathered, (c) => tap.push(c)) : gathered;
  return saveStream(repo, pieces, { ...opts, sha256: false, compressionLevel: DUMP_COMPRESSION_LEVEL });
}

/**
 * Pass a stream through unchanged, showing every chunk to `observe` on the
 * way (e.g. a row reader); when `observe` returns a promise, the stream waits
 * for it before it reads on (the observer's backpressure).
 */
export async function* observed(
  input: AsyncIterable<Uint8Array>,
  observe: (chunk: Uint8Array) => Promise<void> | undefined | void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of input) {
    const waiting = observe(chunk);
    if (waiting) await waiting;
    yield chunk;
  }
}

/** Largest piece yielded for a recorded zero run. */
const ZERO_PIECE = 1024 * 1024;

export interface ContentExpectation {
  size?: number;
  sha256?: string;
  /** What the content is, for the error message (e.g. `dump of database shop`). */
  label: string;
}

/** Blobs loaded ahead of the consumer: decryption and decompression overlap with the tool reading. */
const READ_AHEAD = 4;

/**
 * A stream of stored content, loading up to READ_AHEAD blobs ahead of the
 * consumer. When the expected size or SHA-256 does not match at the end the
 * stream errors with an IntegrityError instead of ending normally.
 */
export function contentStream(
  repo: Repo,
  refs: readonly ContentRef[],
  expect?: ContentExpectation,
): Readable {
  async function* pieces(): AsyncGenerator<Uint8Array> {
    // Older dump snapshots recorded a SHA-256 of the whole stream; newer ones rely on the chunks' keyed IDs.
    const hash = expect?.sha256 === undefined ? undefined : createHash('sha256');
    let size = 0;
    const load = (ref: ContentRef): Promise<Uint8Array | number> => {
      if (typeof ref === 'string') {
        const p = repo.loadBlob(ref);
        p.catch(() => {});
        return p;
      }
      return Promise.resolve(ref.zero);
    };
    const ahead: Promise<Uint8Array | number>[] = [];
    let next = 0;
    const fill = () => {
      while (ahead.length < READ_AHEAD && next < refs.length) ahead.push(load(refs[next++] as ContentRef));
    };
    fill();
    while (ahead.length > 0) {
      const current = await (ahead.shift() as Promise<Uint8Array | number>);
      fill();
      if (typeof current === 'number') {
        for (let left = current; left > 0; left -= ZERO_PIECE) {
          const zeros = Buffer.alloc(Math.min(left, ZERO_PIECE));
          hash?.update(zeros);
          size += zeros.length;
          yield zeros;
        }
      } else {
        hash?.update(current);
        size += current.length;
        yield current;
      }
    }
    if (expect?.size !== undefined && size !== expect.size) {
      throw new IntegrityError(`${expect.label}: read ${size} bytes, the snapshot recorded ${expect.size}`, {
        hint: 'Run `lifeboat check --read-data` on the repository; do not trust this restore.',
      });
    }
    const digest = hash?.digest('hex');
    if (expect?.sha256 !== undefined && digest !== expect.sha256) {
      throw new IntegrityError(
        `${expect.label}: SHA-256 ${digest} does not match the recorded ${expect.sha256}`,
        {
          hint: 'Run `lifeboat check --read-data` on the repository; do not trust this restore.',
        },
      );
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}
