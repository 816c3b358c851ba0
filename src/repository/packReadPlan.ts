/**
 * Reading many blobs with few storage requests (restore). The blobs are
 * grouped by pack, sorted by offset and coalesced into ranges: a small gap of
 * unneeded bytes between two needed blobs is read and dropped, because one
 * request costs more than a few KiB of extra bytes. Each range is read with
 * one storage `get` and each blob in it opened with openStoredBlob (every
 * check of a single loadBlob). Ranges are read ahead of the consumer up to a
 * byte limit and handed over in plan order, so memory stays bounded however
 * many blobs are asked for; the blobs of every range in flight are opened at
 * once, so the worker threads that open them (WorkerPool.open) all have work.
 */
import type { SealedBlob } from './api.js';

/** Where a blob is stored, as the index records it. */
export interface BlobPlace {
  id: string;
  packId: string;
  offset: number;
  /** Stored (sealed) length. */
  length: number;
  /** Plaintext length. */
  rawLength: number;
}

/** One storage read: a byte range of a pack and the blobs inside it, by offset. */
export interface PackRange {
  packId: string;
  offset: number;
  length: number;
  blobs: BlobPlace[];
  /** Plaintext bytes of the blobs (what the range occupies in memory once opened). */
  rawLength: number;
}

export interface PlanOptions {
  /** Unneeded bytes between two blobs that are read rather than split into two requests. */
  maxGap: number;
  /** A range is not extended past this many bytes (a single bigger blob gets its own range). */
  maxRange: number;
}

export const DEFAULT_PLAN: PlanOptions = { maxGap: 64 * 1024, maxRange: 2 * 1024 * 1024 };

/**
 * Group `blobs` into pack ranges. Each blob ID is read once however often it
 * is listed. Packs come in the order of their first blob in `blobs` (the
 * order the caller needs them), ranges within a pack by offset.
 */
export function planPackReads(blobs: Iterable<BlobPlace>, opts: PlanOptions = DEFAULT_PLAN): PackRange[] {
  const byPack = new Map<string, BlobPlace[]>();
  const seen = new Set<string>();
  for (const blob of blobs) {
    if (seen.has(blob.id)) continue;
    seen.add(blob.id);
    let list = byPack.get(blob.packId);
    if (!list) byPack.set(blob.packId, (list = []));
    list.push(blob);
  }
  const ranges: PackRange[] = [];
  for (const [packId, list] of byPack) {
    list.sort((a, b) => a.offset - b.offset);
    let current: PackRange | undefined;
    for (const blob of list) {
      const end = blob.offset + blob.length;
      if (
        current &&
        blob.offset - (current.offset + current.length) <= opts.maxGap &&
        end - current.offset <= opts.maxRange
      ) {
        current.length = Math.max(current.length, end - current.offset);
        current.blobs.push(blob);
        current.rawLength += blob.rawLength;
        continue;
      }
      current = {
        packId,
        offset: blob.offset,
        length: blob.length,
        blobs: [blob],
        rawLength: blob.rawLength,
      };
      ranges.push(current);
    }
  }
  return ranges;
}

/** A blob's plaintext, or why it could not be had. */
export type BlobResult = { ok: true; data: Buffer; sealed?: SealedBlob } | { ok: false; error: unknown };

/** Receives each blob once; may return a promise (the next blob waits for it). */
export type BlobConsumer = (id: string, result: BlobResult) => void | Promise<void>;

/** How the executor reaches the stored bytes (the repository supplies it). */
export interface PackRangeSource {
  /** The bytes of `range` (shorter when the pack is truncated); throws when they cannot be read at all. */
  readRange(range: PackRange): Promise<Buffer>;
  /**
   * Decrypt, decompress and verify one blob's record. `owned`: no other blob
   * shares the record's memory, so it may be moved rather than copied.
   */
  openBlob(blob: BlobPlace, record: Buffer, owned: boolean): Promise<Buffer>;
}

export interface ReadOptions {
  /** Stored plus plaintext bytes of ranges read ahead of the consumer (one bigger range still goes alone). */
  maxBytesInFlight: number;
  /** Ranges read ahead at once (requests in flight). */
  maxRangesInFlight: number;
}

export const DEFAULT_READ: ReadOptions = { maxBytesInFlight: 16 * 1024 * 1024, maxRangesInFlight: 4 };

/** Read and open every range's blobs; never rejects (failures become BlobResults). */
async function fetchRange(source: PackRangeSource, range: PackRange): Promise<BlobResult[]> {
  let bytes: Buffer;
  try {
    bytes = await source.readRange(range);
  } catch (error) {
    return range.blobs.map(() => ({ ok: false, error }));
  }
  // Every record is cut out before any is opened: an owned record may be detached by its opening.
  const records = range.blobs.map((blob) => {
    const start = blob.offset - range.offset;
    // A short read leaves a short record: openStoredBlob reports the blob as truncated.
    return bytes.subarray(Math.min(start, bytes.length), Math.min(start + blob.length, bytes.length));
  });
  const owned = range.blobs.length === 1;
  return Promise.all(
    range.blobs.map((blob, i) =>
      source.openBlob(blob, records[i]!, owned).then(
        (data): BlobResult => ({ ok: true, data }),
        (error: unknown): BlobResult => ({ ok: false, error }),
      ),
    ),
  );
}

/**
 * Read `ranges` (from planPackReads) and hand every blob to `consume`, in
 * plan order. Up to `maxRangesInFlight` ranges and `maxBytesInFlight` bytes
 * are read and opened ahead while the consumer works. A consumer that throws
 * stops the reading; its error is the result.
 */
export async function readPackRanges(
  source: PackRangeSource,
  ranges: readonly PackRange[],
  consume: BlobConsumer,
  opts: ReadOptions = DEFAULT_READ,
): Promise<void> {
  const cost = (r: PackRange) => r.length + r.rawLength;
  const window: { range: PackRange; results: Promise<BlobResult[]> }[] = [];
  let windowBytes = 0;
  let next = 0;
  while (next < ranges.length || window.length > 0) {
    while (
      next < ranges.length &&
      window.length < opts.maxRangesInFlight &&
      (window.length === 0 || windowBytes + cost(ranges[next]!) <= opts.maxBytesInFlight)
    ) {
      const range = ranges[next++]!;
      windowBytes += cost(range);
      window.push({ range, results: fetchRange(source, range) });
    }
    const head = window.shift()!;
    const results = await head.results;
    windowBytes -= cost(head.range);
    for (let i = 0; i < results.length; i++) await consume(head.range.blobs[i]!.id, results[i]!);
  }
}
