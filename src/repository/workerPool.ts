/**
 * A small pool of worker threads for the CPU-heavy steps of the write and
 * read paths: sealing a blob (zstd, then AES-256-GCM, in one job so that one
 * message carries a whole transferred buffer each way), opening a blob record
 * (the reverse, plus the keyed blob ID recomputed over the plaintext), zstd
 * decompression, SHA-256 of whole packs, and running SHA-256 streams (the
 * whole-file hash of a backup). The calling thread meanwhile reads, chunks and
 * computes blob IDs (it needs them at once for deduplication) or writes
 * restored files, so a backup, a restore and a check use every core.
 * See docs/repository-format.md §16 for why zstd-napi and why workers.
 *
 * The workers get the encryption and blob-ID keys (when the pool is given
 * them) so they can seal and open; they are threads of this process, so the
 * keys do not leave it.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as ZstdNapi from 'zstd-napi';
import { OperationError } from '../errors.js';
import { ChunkBuffers } from './chunkBuffers.js';
import { computeBlobId, sealParts, unseal } from './crypto.js';

type ZstdModule = typeof ZstdNapi;

const require = createRequire(import.meta.url);
let zstdModule: ZstdModule | undefined;
/** The native binding is loaded on first use so that commands that never compress stay fast. */
function zstd(): ZstdModule {
  zstdModule ??= require('zstd-napi') as ZstdModule;
  return zstdModule;
}

/**
 * Blobs below this size are (de)compressed, sealed and opened on the calling
 * thread: a worker round trip costs more. Measured for open (2 cores): the
 * calling thread spends 17 µs opening a 4 KiB record itself and 13-21 µs
 * posting it to a worker and taking the result; at 16 KiB 24 µs against
 * 10 µs, at 64 KiB 55 µs against 12-20 µs.
 */
export const INLINE_LIMIT = 16 * 1024;

/** Packs below this size are hashed on the calling thread. */
const INLINE_HASH_LIMIT = 256 * 1024;

/**
 * The first try of a `fastFirst` seal. Measured on 1 MiB pieces of dumps here: on sysbench-like rows (random
 * digits) zstd −5 with Huffman-coded literals needs ~35–50 % less CPU than level 1 for 1.5 % more bytes
 * (2.192:1 against 2.226:1) — at level 1 nearly every position of such text has some short match, each one a
 * sequence to encode for next to no gain. On pgbench's archive (long runs of blanks) it stores 47:1 where level
 * 1 stores 85:1, and there level 1 costs next to nothing: hence the second try below FAST_FIRST_ENOUGH.
 */
export const FAST_FIRST_LEVEL = -5;
/** A first try that shrinks the data more than this many times over is redone at the job's level. */
const FAST_FIRST_ENOUGH = 4;
/** zstd's ZSTD_c_literalCompressionMode (an experimental parameter, stable in the format) and its "Huffman" value. */
const LITERAL_COMPRESSION_MODE = 1002;
const LITERALS_HUFFMAN = 1;

/**
 * The worker's source. It is evaluated as a CommonJS script (`eval: true`) so
 * it works the same from TypeScript sources (tests) and the built dist/ tree.
 *
 * 'seal' returns the parts of crypto.ts sealParts() (nonce, ciphertext, tag)
 * and hands the input buffer back. A worker thus keeps no large buffer
 * behind: V8 collects ArrayBuffers only after tens of MiB of them have
 * piled up, per thread, so every buffer a worker received or allocated and
 * dropped would cost resident memory (about 45 MiB per worker, measured);
 * the compressed bytes go to a scratch buffer reused for every blob.
 *
 * 'open' repeats the checks of openRecord() below and answers with the
 * plaintext or the first check that failed (\`failure\`); for the same
 * reason it hands back the record and the decrypted zstd frame (measured:
 * check --read-data peaked 40 MiB higher while the frames stayed behind).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const {
  closeSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, futimesSync, openSync, readSync, renameSync,
  unlinkSync, writeSync,
} = require('node:fs');
const { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } = require('node:crypto');
const zstd = require(workerData.zstdPath);
const binding = require(workerData.zstdBindingPath);
// One compressor per zstd level in use: the pool's, and any a seal job asks for.
const compressors = new Map();
function compressorAt(level) {
  let c = compressors.get(level);
  if (!c) {
    c = new zstd.Compressor();
    c.setParameters({ compressionLevel: level });
    // zstd's negative levels leave literals raw by default; with them Huffman-coded, text keeps its ratio.
    if (level < 0) c.cctx.setParameter(${LITERAL_COMPRESSION_MODE}, ${LITERALS_HUFFMAN});
    compressors.set(level, c);
  }
  return c;
}
// fastFirst: try ${FAST_FIRST_LEVEL} first; only data it shrinks more than ${FAST_FIRST_ENOUGH}:1 is compressed again at the
// job's level, where such data is cheap to compress and gains most (see FAST_FIRST_LEVEL).
function compressInto(input, level, fastFirst) {
  if (fastFirst) {
    const n = compressorAt(${FAST_FIRST_LEVEL}).cctx.compress2(scratch, input);
    if (n * ${FAST_FIRST_ENOUGH} > input.length) return n;
  }
  return compressorAt(level).cctx.compress2(scratch, input);
}
const decompressor = new zstd.Decompressor();
const sealKey = workerData.sealKey;
const blobIdKey = workerData.blobIdKey;
const streams = new Map();
const EMPTY = new ArrayBuffer(0);
let scratch = Buffer.alloc(0);
// Transfer only an ArrayBuffer that the result owns alone (small Buffers share a pool).
const own = (buf) =>
  buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
    ? buf.buffer
    : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
// Nonces from a pool of random bytes, as crypto.ts freshNonce does: one randomBytes call per 12 bytes cost
// ~7 µs (a third of a small file's seal). Each is copied out, so a nonce posted back is 12 bytes, not the pool.
let noncePool = Buffer.alloc(0);
let nonceAt = 0;
function freshNonce() {
  if (nonceAt + 12 > noncePool.length) {
    noncePool = randomBytes(12 * 4096);
    nonceAt = 0;
  }
  const nonce = new Uint8Array(12);
  nonce.set(noncePool.subarray(nonceAt, nonceAt + 12));
  nonceAt += 12;
  return nonce;
}
function seal(input, aad, level = workerData.level, fastFirst = false) {
  const bound = binding.compressBound(input.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound);
  const packedLength = compressInto(input, level, fastFirst);
  const compressed = packedLength < input.length;
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', sealKey, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = cipher.update(compressed ? scratch.subarray(0, packedLength) : input);
  const final = cipher.final();
  return { nonce, body: own(body), final, tag: cipher.getAuthTag(), compressed };
}
function unseal(record, aad) {
  if (record.length < 28) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', sealKey, record.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(record.subarray(record.length - 16));
  try {
    const body = decipher.update(record.subarray(12, record.length - 16));
    const final = decipher.final();
    return final.length === 0 ? body : Buffer.concat([body, final]);
  } catch {
    return undefined;
  }
}
// Only verifying: decompressed into the scratch buffer (no other job uses it meanwhile), nothing to drop.
function decompress(frame, job) {
  if (job.verifyOnly && binding.getFrameContentSize(frame) === job.rawLength) {
    if (scratch.length < job.rawLength) scratch = Buffer.allocUnsafeSlow(job.rawLength);
    const length = decompressor.dctx.decompress(scratch.subarray(0, job.rawLength), frame);
    return scratch.subarray(0, length);
  }
  return decompressor.decompress(frame);
}
function open(record, job) {
  const payload = unseal(record, job.aad);
  if (!payload) return { failure: { reason: 'authentication' } };
  let plain = payload;
  if (job.compressed) {
    try {
      plain = decompress(payload, job);
    } catch (err) {
      return { failure: { reason: 'decompression', message: String((err && err.message) || err) } };
    }
    if (plain.length !== job.rawLength) {
      const message = 'decompressed to ' + plain.length + ' bytes, expected ' + job.rawLength;
      return { failure: { reason: 'decompression', message } };
    }
  } else if (plain.length !== job.rawLength) {
    return { failure: { reason: 'length', length: plain.length } };
  }
  if (!job.contentChecked && createHmac('sha256', blobIdKey).update(plain).digest('hex') !== job.id) {
    return { failure: { reason: 'id' } };
  }
  return { plain, payload };
}
// readFiles: one small file read into fileBuf with one read of up to size + 1 bytes (a longer read shows
// a file that grew), and its status after the read; or the step that failed.
let fileBuf = Buffer.alloc(0);
let zeroBuf = Buffer.alloc(0);
function readSmallFile(path, size, flags) {
  if (fileBuf.length < size + 1) fileBuf = Buffer.allocUnsafeSlow(size + 1);
  let fd;
  try {
    fd = openSync(path, flags);
  } catch (err) {
    return { error: { stage: 'open', code: err.code, message: String(err.message) } };
  }
  try {
    const n = readSync(fd, fileBuf, 0, size + 1, 0);
    const st = fstatSync(fd, { bigint: true });
    const stat = { mode: st.mode, dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
    return { bytes: fileBuf.subarray(0, n), stat };
  } catch (err) {
    return { error: { stage: 'read', code: err.code, message: String(err.message) } };
  } finally {
    try {
      closeSync(fd);
    } catch {}
  }
}
// writeFiles: one restored small file created (never through a symlink: the caller's flags), checked against
// its SHA-256, written (aligned 64 KiB blocks of zeros left as holes), given owner, mode and mtime, and moved
// into place; on any failure nothing is left behind.
function writeSmallFile(dest, final, bytes, f) {
  if (f.sealed) {
    // A stored record: decrypted, decompressed and checked here (see open()).
    // Decompressed into the worker's scratch buffer (verifyOnly): the plaintext is written and dropped
    // before the next job, and a buffer per file piled up tens of MiB per worker before V8 collected them.
    const opened = open(bytes, {
      aad: f.sealed.aad,
      id: f.sealed.id,
      compressed: f.sealed.compressed,
      rawLength: f.sealed.rawLength,
      verifyOnly: true,
      // Checked against the file's SHA-256 below instead of its keyed ID (OpenRequest.contentChecked).
      contentChecked: f.sha256 !== undefined,
    });
    if (!opened.plain) return { error: { stage: 'open', message: 'blob record did not open', failure: opened.failure } };
    bytes = opened.plain;
  }
  if (f.sha256 !== undefined && createHash('sha256').update(bytes).digest('hex') !== f.sha256) {
    return { error: { stage: 'verify', message: 'restored content does not match the SHA-256 recorded at backup' } };
  }
  let fd;
  try {
    fd = openSync(dest, f.flags, 0o600);
  } catch (err) {
    return { error: { stage: 'create', code: err.code, message: String(err.message) } };
  }
  try {
    let holes = false;
    for (let at = 0; at < bytes.length; at += 65536) {
      const block = bytes.subarray(at, Math.min(bytes.length, at + 65536));
      if (block.length === 65536 && allZero(block)) {
        holes = true;
        continue;
      }
      for (let done = 0; done < block.length; ) done += writeSync(fd, block, done, block.length - done, at + done);
    }
    if (holes) ftruncateSync(fd, bytes.length);
    if (f.uid >= 0) fchownSync(fd, f.uid, f.gid);
    fchmodSync(fd, f.mode);
    futimesSync(fd, f.mtime, f.mtime);
    const closing = fd;
    fd = undefined;
    closeSync(closing);
    if (final) renameSync(dest, final);
    return {};
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {}
    }
    try {
      unlinkSync(dest);
    } catch {}
    return { error: { stage: 'write', code: err.code, message: String(err.message) } };
  }
}
function allZero(bytes) {
  if (bytes[0] !== 0) return false;
  if (zeroBuf.length < bytes.length) zeroBuf = Buffer.alloc(bytes.length);
  return bytes.equals(zeroBuf.subarray(0, bytes.length));
}
// An ArrayBuffer that \`buf\` alone spans, so that it can be handed back; else none.
const whole = (buf) =>
  buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength ? [buf.buffer] : [];
parentPort.on('message', (job) => {
  try {
    const input = job.data === undefined ? undefined : new Uint8Array(job.data, 0, job.length);
    if (job.op === 'seal') {
      const { nonce, body, final, tag, compressed } = seal(input, job.aad, job.level, job.fastFirst);
      const parts = { nonce, final, tag, input: job.data };
      parentPort.postMessage({ seq: job.seq, result: body, compressed, parts }, [body, job.data]);
    } else if (job.op === 'sealBatch') {
      // Many small blobs in one job: their records come back concatenated in one buffer.
      const pieces = [];
      const recordLengths = [];
      const compressedFlags = [];
      let offset = 0;
      for (let i = 0; i < job.lengths.length; i++) {
        const one = seal(new Uint8Array(job.data, offset, job.lengths[i]), job.aads[i]);
        offset += job.lengths[i];
        const record = [one.nonce, new Uint8Array(one.body), one.final, one.tag];
        pieces.push(...record);
        recordLengths.push(record.reduce((n, part) => n + part.length, 0));
        compressedFlags.push(one.compressed);
      }
      const records = own(Buffer.concat(pieces));
      // The batch buffer goes back too, to be filled again (it would otherwise wait here for a GC).
      const message = { seq: job.seq, result: records, recordLengths, compressedFlags, input: job.data };
      parentPort.postMessage(message, [records, job.data]);
    } else if (job.op === 'readFiles') {
      // Small files of a backup: read, hashed, identified and sealed here, so their bytes never cross
      // threads. Every file is sealed, also one the repository turns out to hold already (it is dropped).
      const pieces = [];
      const files = [];
      const paths = Buffer.from(job.data);
      let at = 0;
      for (let i = 0; i < job.lengths.length; i++) {
        const path = paths.subarray(at, at + job.lengths[i]);
        at += job.lengths[i];
        const read = readSmallFile(path, job.sizes[i], job.flags);
        if (read.error) {
          files.push({ error: read.error });
          continue;
        }
        const bytes = read.bytes;
        const file = { size: bytes.length, stat: read.stat, sha256: createHash('sha256').update(bytes).digest('hex') };
        files.push(file);
        if (bytes.length === 0) continue;
        if (allZero(bytes)) {
          file.zero = true;
          continue;
        }
        file.id = createHmac('sha256', blobIdKey).update(bytes).digest('hex');
        const one = seal(bytes, job.aad + file.id);
        const record = [one.nonce, new Uint8Array(one.body), one.final, one.tag];
        pieces.push(...record);
        file.recordLength = record.reduce((n, part) => n + part.length, 0);
        file.compressed = one.compressed;
      }
      const records = own(Buffer.concat(pieces));
      parentPort.postMessage({ seq: job.seq, result: records, files }, [records]);
    } else if (job.op === 'writeFiles') {
      // Small files of a restore: contents back to back in data, paths back to back in names.
      const contents = Buffer.from(job.data);
      const names = Buffer.from(job.names);
      const files = [];
      let at = 0;
      let nameAt = 0;
      for (const f of job.writes) {
        const bytes = contents.subarray(at, at + f.length);
        at += f.length;
        const dest = names.subarray(nameAt, nameAt + f.destLength);
        nameAt += f.destLength;
        const final = f.finalLength > 0 ? names.subarray(nameAt, nameAt + f.finalLength) : undefined;
        nameAt += f.finalLength;
        files.push(writeSmallFile(dest, final, bytes, f));
      }
      // The contents buffer goes back to be filled again.
      parentPort.postMessage({ seq: job.seq, result: job.data, written: files }, [job.data]);
    } else if (job.op === 'open') {
      const { plain, payload, failure } = open(input, job);
      const result = plain && !job.verifyOnly ? own(plain) : EMPTY;
      // The record and the decrypted payload go back too (in the transfer list only).
      const transfer = [job.data];
      if (result !== EMPTY) transfer.push(result);
      if (payload && payload.buffer !== result) transfer.push(...whole(payload));
      parentPort.postMessage({ seq: job.seq, result, failure }, transfer);
    } else if (job.op === 'verifyBatch') {
      // Records back to back, only verdicts wanted (check --read-data): one round trip for all of them.
      const failures = [];
      let offset = 0;
      for (let i = 0; i < job.lengths.length; i++) {
        const record = Buffer.from(job.data, offset, job.lengths[i]);
        offset += job.lengths[i];
        const { failure } = open(record, { ...job.blobs[i], verifyOnly: true });
        if (failure) failures.push({ index: i, failure });
      }
      parentPort.postMessage({ seq: job.seq, result: job.data, failures }, [job.data]);
    } else if (job.op === 'hashUpdate') {
      // job.data is usually a SharedArrayBuffer: read in place, nothing to send back but the ack.
      let hash = streams.get(job.stream);
      if (!hash) streams.set(job.stream, (hash = createHash('sha256')));
      hash.update(new Uint8Array(job.data, job.offset, job.length));
      parentPort.postMessage({ seq: job.seq, result: EMPTY });
    } else if (job.op === 'hashDigest') {
      const hash = streams.get(job.stream) || createHash('sha256');
      streams.delete(job.stream);
      parentPort.postMessage({ seq: job.seq, result: EMPTY, hex: hash.digest('hex') });
    } else if (job.op === 'sha256') {
      const hex = createHash('sha256').update(input).digest('hex');
      parentPort.postMessage({ seq: job.seq, result: job.data, hex }, [job.data]);
    } else if (job.op === 'compress') {
      const out = compressorAt(workerData.level).compress(input);
      // Not smaller: hand the input back so the caller needs no copy of its own.
      const ab = out.length < input.length ? own(out) : job.data;
      parentPort.postMessage({ seq: job.seq, result: ab, compressed: out.length < input.length }, [ab]);
    } else {
      const ab = own(decompressor.decompress(input));
      parentPort.postMessage({ seq: job.seq, result: ab, compressed: false }, [ab]);
    }
  } catch (err) {
    parentPort.postMessage({ seq: job.seq, error: String((err && err.message) || err) });
  }
});
`;

interface JobResult {
  data: ArrayBuffer;
  compressed: boolean;
  hex?: string;
  /** seal: the small parts of the record, and the input handed back. */
  parts?: { nonce: Uint8Array; final: Uint8Array; tag: Uint8Array; input: ArrayBuffer };
  /** open: why the record did not open (`data` is then empty). */
  failure?: OpenFailure;
  /** sealBatch: the length of each record in `data`, and whether its payload is compressed. */
  recordLengths?: number[];
  compressedFlags?: boolean[];
  /** sealBatch: the batch buffer, handed back for the next batch. */
  input?: ArrayBuffer;
  /** verifyBatch: the records that failed, by their index in the batch. */
  failures?: Array<{ index: number; failure: OpenFailure }>;
  /** readFiles: what became of each file; the sealed records of those with an `id` lie in `data`, in order. */
  files?: SmallFileRead[];
  /** writeFiles: what became of each file (no error: written and in place). */
  written?: SmallFileWritten[];
}

/** What is posted to a worker (besides `seq`). */
interface JobMessage {
  op:
    | 'compress'
    | 'decompress'
    | 'sha256'
    | 'seal'
    | 'sealBatch'
    | 'open'
    | 'verifyBatch'
    | 'hashUpdate'
    | 'hashDigest'
    | 'readFiles'
    | 'writeFiles';
  /** Moved to the worker (detached here) unless it is a SharedArrayBuffer or absent. */
  data?: ArrayBuffer | SharedArrayBuffer;
  /** seal, open: the associated data; readFiles: its prefix, to which each blob's ID is appended. */
  aad?: string;
  /** seal: the zstd level, when not the pool's. */
  level?: number;
  /** seal: try FAST_FIRST_LEVEL first (SaveBlobOptions.fastFirst). */
  fastFirst?: boolean;
  /**
   * sealBatch, verifyBatch: the blobs lie back to back in `data`; their lengths (and associated data).
   * readFiles: the paths lie back to back in `data`; their lengths.
   */
  lengths?: number[];
  /** writeFiles: each file (contents back to back in `data`, paths back to back in `names`). */
  writes?: WriteFileSpec[];
  names?: ArrayBuffer;
  /** readFiles: the size each file was listed with, and the open(2) flags. */
  sizes?: number[];
  flags?: number;
  aads?: string[];
  /** verifyBatch: what each record must hold. */
  blobs?: Array<{ aad: string; id: string; compressed: boolean; rawLength: number }>;
  /** open: what the record must hold, and whether the plaintext is wanted. */
  id?: string;
  compressed?: boolean;
  rawLength?: number;
  verifyOnly?: boolean;
  contentChecked?: boolean;
  /** hashUpdate / hashDigest: the stream. */
  stream?: number;
  /** hashUpdate: the range of `data` to hash. */
  offset?: number;
  length?: number;
}

interface Job {
  seq: number;
  message: JobMessage;
  /** Jobs of a hash stream must all run, in order, on this worker. */
  pinned?: PoolWorker;
  resolve: (result: JobResult) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  active: Map<number, Job>;
  /** Hash streams pinned to this worker and not digested yet. */
  streams: number;
}

export interface CompressionOptions {
  level: number;
  /** Worker threads; defaults to the number of cores (at most 4). 0 = everything on the calling thread. */
  workers?: number;
  /** AES-256-GCM key for seal(); without it, seal() is not available. */
  sealKey?: Uint8Array;
  /** HMAC-SHA256 blob-ID key; with sealKey, open() runs on the workers (else on the calling thread). */
  blobIdKey?: Uint8Array;
}

/** The keys open() checks a record with (a MasterKey has them). */
export interface BlobKeys {
  encryption: Uint8Array;
  blobId: Uint8Array;
}

/** What a stored blob record must turn into. */
export interface OpenRequest {
  id: string;
  /** The associated data it was sealed with (crypto.ts associatedData.blob). */
  associatedData: string;
  /** True when the payload is a zstd frame. */
  compressed: boolean;
  /** Plaintext length, as the index records it. */
  rawLength: number;
  /** Only the verdict is wanted, not the plaintext (check --read-data): a worker keeps it to itself. */
  verifyOnly?: boolean;
  /**
   * The caller checks the plaintext against a content hash of its own (a restored file's SHA-256, which
   * removes the file when it differs): authentication, decompression and length are checked, the keyed ID
   * is not recomputed (docs/repository-format.md §6).
   */
  contentChecked?: boolean;
}

/** The first check a blob record failed, in the order blobReader.ts reports them. */
export type OpenFailure =
  | { reason: 'authentication' }
  | { reason: 'decompression'; message: string }
  | { reason: 'length'; length: number }
  | { reason: 'id' };

/** The verified plaintext of a blob record (none for verifyOnly), or the check it failed. */
export type OpenResult = { ok: true; plain?: Buffer } | { ok: false; failure: OpenFailure };

/** `data`'s own ArrayBuffer when it spans all of it (can be transferred), else a copy of exactly its bytes. */
function transferable(data: Uint8Array, mayTake: boolean): ArrayBuffer {
  if (
    mayTake &&
    data.byteOffset === 0 &&
    data.buffer instanceof ArrayBuffer &&
    data.byteLength === data.buffer.byteLength
  ) {
    return data.buffer;
  }
  const copy = Buffer.allocUnsafeSlow(data.length);
  copy.set(data);
  return copy.buffer;
}

/** A file's status (fstat) right after it was read. */
export interface ReadFileStat {
  mode: bigint;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** What WorkerPool.readFiles made of one small file. */
export type SmallFileRead =
  | { error: { stage: 'open' | 'read'; code?: string; message: string } }
  | {
      error?: undefined;
      /** Bytes read (one more than listed: the file grew). */
      size: number;
      stat: ReadFileStat;
      /** Hex SHA-256 of the bytes read. */
      sha256: string;
      /** True when every byte read is zero (nothing sealed). */
      zero?: boolean;
      /** Blob ID of the bytes, when there are any and not all zero; its record is in the batch's records. */
      id?: string;
      recordLength?: number;
      compressed?: boolean;
    };

/** How writeFiles writes one file (its contents and paths travel in the job's buffers). */
export interface WriteFileSpec {
  /** Content bytes. */
  length: number;
  /** Bytes of the path created, and of the path it is renamed to afterwards (0: none). */
  destLength: number;
  finalLength: number;
  /** open(2) flags for the creation (O_CREAT | O_EXCL | O_NOFOLLOW …). */
  flags: number;
  /** Owner to set (uid -1: leave it), mode, mtime in seconds. */
  uid: number;
  gid: number;
  mode: number;
  mtime: number;
  /** The content's recorded SHA-256: checked before anything is created. */
  sha256?: string;
  /** The bytes are a stored blob record, opened (and checked against the blob's ID) before anything else. */
  sealed?: { aad: string; id: string; compressed: boolean; rawLength: number };
}

/** WorkerPool.writeFiles, as a repository hands it out. */
export type WriteFiles = (
  writes: WriteFileSpec[],
  contents: Buffer,
  names: Buffer,
) => Promise<{ written: SmallFileWritten[]; contents: Buffer }>;

/** What writeFiles made of one file. */
export interface SmallFileWritten {
  error?: {
    stage: 'open' | 'verify' | 'create' | 'write';
    code?: string;
    message: string;
    /** open: the check the blob record failed. */
    failure?: OpenFailure;
  };
}

/** Result of compressing one blob: the zstd frame, or the input itself when zstd did not shrink it. */
export interface CompressResult {
  bytes: Buffer;
  compressed: boolean;
}

/** Result of sealing one blob: crypto.ts sealParts() of the payload (concatenated, the seal() format). */
export interface SealResult {
  sealed: Buffer[];
  /** Total bytes of `sealed`. */
  length: number;
  /** True when the payload is the zstd frame of the blob, false when it is the blob itself. */
  compressed: boolean;
}

/** A running SHA-256 on one worker thread: update() in order, then digest(). */
export interface HashStream {
  /**
   * Hash `data` after everything given before. Resolves once the bytes have
   * been read: a buffer over a SharedArrayBuffer is read in place (no copy)
   * and may be reused after that; any other buffer is copied at once, unless
   * `give` lets a buffer spanning its whole ArrayBuffer move instead.
   */
  update(data: Uint8Array, give?: boolean): Promise<void>;
  /** Hex digest of everything given; the stream cannot be used afterwards. */
  digest(): Promise<string>;
}

/**
 * Blobs below INLINE_LIMIT are sealed in batches of up to this many bytes (or SEAL_BATCH_COUNT blobs): one
 * worker job per batch. Sealed one by one on the calling thread, small files cost the main thread ~45 µs per
 * blob in zstd and AES-GCM (measured on 15,000 files of /usr/share), a third of its time; one job each would
 * cost a message round trip per blob instead.
 */
const SEAL_BATCH_BYTES = 256 * 1024;
const SEAL_BATCH_COUNT = 256;
/**
 * Batches sent and not yet sealed, per worker (about 1 MiB, or 1,024 blobs). Beyond that the open batch
 * waits, and the small blobs that do not fit in it are sealed on the calling thread. Without a bound the
 * backlog grew to the whole 32 MiB in-flight budget whenever the workers fell behind, each waiting blob
 * with its promise chain. Measured on 2 cores, peak RSS of a first backup: /usr/share (47k files)
 * 410 → 388 MiB, 100,000 files of 200 bytes 474 → 399 MiB, CPU unchanged, wall 0–4% longer. Two per
 * worker saved another 10–35 MiB but cost ~5% wall time on /usr/share.
 */
const SEAL_BATCHES_PER_WORKER = 4;

/** Small blobs gathered for one sealBatch job, sent on the next turn of the event loop or when full. */
interface SealBatch {
  buffer: Buffer;
  bytes: number;
  lengths: number[];
  aads: string[];
  waiters: { resolve: (result: SealResult) => void; reject: (err: Error) => void }[];
  timer: NodeJS.Immediate;
}

/** zstd, AES-GCM sealing and SHA-256 off the calling thread (small inputs are handled inline). */
export class WorkerPool {
  private readonly level: number;
  private readonly size: number;
  private readonly sealKey: Buffer | undefined;
  private readonly blobIdKey: Buffer | undefined;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private nextSeq = 1;
  private nextStream = 1;
  private broken: Error | undefined;
  private closed = false;
  private sealBatch: SealBatch | undefined;
  /** sealBatch jobs submitted and not yet answered (at most SEAL_BATCHES_PER_WORKER per worker). */
  private batchesInFlight = 0;
  /** Batch buffers handed back by the workers, filled again by the next batches. */
  private readonly spareBatchBuffers: Buffer[] = [];
  /** Buffers to cut chunks into: seal() moves them to a worker and takes them back for the next chunk. */
  readonly chunkBuffers = new ChunkBuffers();
  private inline:
    { c: InstanceType<ZstdModule['Compressor']>; d: InstanceType<ZstdModule['Decompressor']> } | undefined;

  constructor(opts: CompressionOptions) {
    this.level = opts.level;
    this.size = opts.workers ?? Math.max(1, Math.min(4, availableParallelism()));
    this.sealKey = opts.sealKey ? Buffer.from(opts.sealKey) : undefined;
    this.blobIdKey = opts.blobIdKey ? Buffer.from(opts.blobIdKey) : undefined;
  }

  /**
   * Compress one blob. Takes ownership of `data`: its memory may be moved to a
   * worker thread (detached), so the caller must pass a buffer it no longer uses.
   */
  async compress(data: Uint8Array): Promise<CompressResult> {
    if (data.length < INLINE_LIMIT || this.size === 0) {
      const out = this.inlineCodec().c.compress(data);
      const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      return out.length < data.length ? { bytes: out, compressed: true } : { bytes: view, compressed: false };
    }
    const result = await this.submit({ op: 'compress', data: transferable(data, true) });
    return { bytes: Buffer.from(result.data), compressed: result.compressed };
  }

  /**
   * Compress (when zstd shrinks it) and seal one blob with the pool's key and
   * `associatedData`, in one worker job. With `take`, the pool may detach
   * `data` (move its memory to the worker) when it owns its whole
   * ArrayBuffer, or when it starts a buffer of chunkBuffers (that buffer then
   * serves a later chunk); otherwise `data` is copied and left alone. `level` (zstd)
   * replaces the pool's for a blob sealed on a worker; blobs under
   * INLINE_LIMIT, and all of them in a pool without workers, use the pool's.
   */
  async seal(
    data: Uint8Array,
    associatedData: string,
    take: boolean,
    level?: number,
    fastFirst = false,
  ): Promise<SealResult> {
    const key = this.sealKey;
    if (!key) throw new Error('this worker pool has no key to seal with');
    // A chunk cut into one of chunkBuffers' buffers travels in its whole buffer, with its length.
    const pooled = take && data.byteOffset === 0 && this.chunkBuffers.owns(data.buffer);
    if (this.size === 0 || data.length < INLINE_LIMIT) {
      // Sealed (or copied into a batch) before this returns: the buffer is free again.
      const sealed =
        this.size === 0
          ? this.sealHere(key, data, associatedData)
          : this.sealInBatch(key, data, associatedData);
      if (pooled) this.chunkBuffers.give(data.buffer as ArrayBuffer);
      return sealed;
    }
    const result = await this.submit({
      op: 'seal',
      data: pooled ? (data.buffer as ArrayBuffer) : transferable(data, take),
      ...(pooled ? { length: data.length } : {}),
      aad: associatedData,
      ...(level !== undefined && level !== this.level ? { level } : {}),
      ...(fastFirst ? { fastFirst } : {}),
    });
    const p = result.parts!;
    // The worker hands the input back (it keeps no large buffer): the next chunk is cut into it.
    if (p.input) this.chunkBuffers.give(p.input);
    const parts = [p.nonce, Buffer.from(result.data), p.final, p.tag].map((b) =>
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    );
    return sealResult(
      parts.filter((b) => b.length > 0),
      result.compressed,
    );
  }

  /**
   * Decrypt a blob record with `keys`, decompress it and check its length
   * and keyed ID: on a worker when the pool holds the same keys, the record
   * is large enough and the pool has workers, else on the calling thread.
   * Resolves with the plaintext or the first check that failed (it rejects
   * only when the pool itself fails). `take` as for seal().
   */
  async open(keys: BlobKeys, record: Uint8Array, blob: OpenRequest, take: boolean): Promise<OpenResult> {
    if (record.length < INLINE_LIMIT || this.size === 0 || !this.holds(keys)) {
      return openRecord(keys, record, blob, (frame) => this.inlineCodec().d.decompress(frame));
    }
    const result = await this.submit({
      op: 'open',
      data: transferable(record, take),
      length: record.length,
      aad: blob.associatedData,
      id: blob.id,
      compressed: blob.compressed,
      rawLength: blob.rawLength,
      verifyOnly: blob.verifyOnly === true,
      contentChecked: blob.contentChecked === true,
    });
    if (result.failure) return { ok: false, failure: result.failure };
    return blob.verifyOnly ? { ok: true } : { ok: true, plain: Buffer.from(result.data) };
  }

  /**
   * Verify blob records that lie back to back in `data` (`lengths` each), as
   * open() with verifyOnly does, in one worker job: checking thousands of
   * small records then costs the calling thread one round trip per batch
   * instead of the openings themselves (on the calling thread when open()
   * would be). `data`'s memory is taken: when it starts its ArrayBuffer, that
   * whole buffer moves (bytes after the records are not read). Resolves with
   * each record's failure (undefined for the records that opened) and the
   * buffer, handed back to be filled again: batches that waited for a GC
   * instead raised check --read-data's peak RSS by ~60 MiB.
   */
  async verifyBatch(
    keys: BlobKeys,
    data: Buffer,
    lengths: readonly number[],
    blobs: readonly OpenRequest[],
  ): Promise<{ verdicts: (OpenFailure | undefined)[]; buffer: Buffer }> {
    const verdicts = new Array<OpenFailure | undefined>(lengths.length);
    if (this.size === 0 || !this.holds(keys)) {
      let offset = 0;
      lengths.forEach((length, i) => {
        const record = data.subarray(offset, offset + length);
        offset += length;
        const blob = { ...(blobs[i] as OpenRequest), verifyOnly: true };
        const opened = openRecord(keys, record, blob, (frame) => this.inlineCodec().d.decompress(frame));
        if (!opened.ok) verdicts[i] = opened.failure;
      });
      return { verdicts, buffer: data };
    }
    const whole = data.byteOffset === 0 && data.buffer instanceof ArrayBuffer;
    const result = await this.submit({
      op: 'verifyBatch',
      data: whole ? (data.buffer as ArrayBuffer) : transferable(data, true),
      lengths: [...lengths],
      blobs: blobs.map((b) => ({
        aad: b.associatedData,
        id: b.id,
        compressed: b.compressed,
        rawLength: b.rawLength,
      })),
    });
    for (const { index, failure } of result.failures ?? []) verdicts[index] = failure;
    return { verdicts, buffer: Buffer.from(result.data) };
  }

  /** True when the workers were given exactly `keys` (they open with their own copy). */
  private holds(keys: BlobKeys): boolean {
    return (
      this.sealKey !== undefined &&
      this.blobIdKey !== undefined &&
      this.sealKey.equals(keys.encryption) &&
      this.blobIdKey.equals(keys.blobId)
    );
  }

  /**
   * Hex SHA-256 of `data`, computed on a worker. Takes ownership like
   * compress(); the bytes come back (as a new Buffer over the same memory).
   * With `ownsWholeBuffer`, `data` is a view from offset 0 of an ArrayBuffer
   * the caller gives away entirely: all of it moves (no copy of the view),
   * and the returned view's `.buffer` is that whole ArrayBuffer.
   */
  async sha256(data: Buffer, ownsWholeBuffer = false): Promise<{ hex: string; data: Buffer }> {
    if (data.length < INLINE_HASH_LIMIT || this.size === 0) {
      return { hex: createHash('sha256').update(data).digest('hex'), data };
    }
    const length = data.length; // `data` is detached once submitted
    const whole = ownsWholeBuffer && data.byteOffset === 0 && data.buffer instanceof ArrayBuffer;
    const ab = whole ? (data.buffer as ArrayBuffer) : transferable(data, true);
    const result = await this.submit({ op: 'sha256', data: ab, length });
    return { hex: result.hex!, data: Buffer.from(result.data, 0, length) };
  }

  /** A SHA-256 over a sequence of buffers, computed on one worker (inline without workers). */
  hashStream(): HashStream {
    if (this.size === 0) {
      const hash = createHash('sha256');
      return {
        update: (data) => {
          hash.update(data);
          return Promise.resolve();
        },
        digest: () => Promise.resolve(hash.digest('hex')),
      };
    }
    const stream = this.nextStream++;
    let pinned: PoolWorker | undefined;
    // The least busy worker (spawning one if the pool is not full) takes the whole stream.
    const target = () => {
      if (!pinned) {
        pinned =
          this.workers.length < this.size
            ? this.spawn()
            : this.workers.reduce((a, b) => (b.active.size < a.active.size ? b : a));
        pinned.streams++;
      }
      return pinned;
    };
    return {
      update: async (data, give = false) => {
        const length = data.length;
        if (length === 0) return;
        const shared = data.buffer instanceof SharedArrayBuffer;
        await this.submit(
          {
            op: 'hashUpdate',
            stream,
            // Not given: a copy now (the caller may reuse its buffer); given: moved when it can be.
            data: shared ? (data.buffer as SharedArrayBuffer) : transferable(data, give),
            offset: shared ? data.byteOffset : 0,
            length,
          },
          target(),
        );
      },
      digest: async () => {
        const worker = target();
        try {
          return (await this.submit({ op: 'hashDigest', stream }, worker)).hex!;
        } finally {
          worker.streams--;
        }
      },
    };
  }

  /** Decompress a zstd frame; throws when it does not decode to exactly `rawLength` bytes. */
  async decompress(data: Uint8Array, rawLength: number): Promise<Buffer> {
    const out =
      rawLength < INLINE_LIMIT || this.size === 0
        ? this.inlineCodec().d.decompress(data)
        : Buffer.from((await this.submit({ op: 'decompress', data: transferable(data, false) })).data);
    if (out.length !== rawLength) {
      throw new Error(`decompressed to ${out.length} bytes, expected ${rawLength}`);
    }
    return out;
  }

  /** Compress (when zstd shrinks it) and seal one blob on the calling thread. */
  private sealHere(key: Buffer, data: Uint8Array, associatedData: string): SealResult {
    const out = this.inlineCodec().c.compress(data);
    const compressed = out.length < data.length;
    return sealResult(sealParts(key, compressed ? out : data, associatedData), compressed);
  }

  /**
   * Copy a small blob into the open batch (see SEAL_BATCH_BYTES); resolves when its batch is sealed. A full
   * batch waits while the workers hold SEAL_BATCHES_PER_WORKER each; meanwhile the blobs that do not fit
   * are sealed here and now.
   */
  private async sealInBatch(key: Buffer, data: Uint8Array, associatedData: string): Promise<SealResult> {
    let batch = this.sealBatch;
    if (
      batch &&
      (batch.bytes + data.length > batch.buffer.length || batch.lengths.length >= SEAL_BATCH_COUNT)
    ) {
      if (!this.sendSealBatch()) return this.sealHere(key, data, associatedData);
      batch = undefined;
    }
    if (!batch) {
      batch = {
        buffer: this.spareBatchBuffers.pop() ?? Buffer.allocUnsafeSlow(SEAL_BATCH_BYTES),
        bytes: 0,
        lengths: [],
        aads: [],
        waiters: [],
        timer: setImmediate(() => this.sendSealBatch()),
      };
      this.sealBatch = batch;
    }
    batch.buffer.set(data, batch.bytes);
    batch.bytes += data.length;
    batch.lengths.push(data.length);
    batch.aads.push(associatedData);
    const sealed = new Promise<SealResult>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (batch.lengths.length >= SEAL_BATCH_COUNT) this.sendSealBatch();
    return sealed;
  }

  /**
   * Send the open batch unless the workers already hold SEAL_BATCHES_PER_WORKER batches each; then it
   * stays open until one of them is answered. True when it was sent (or there was none).
   */
  private sendSealBatch(): boolean {
    const batch = this.sealBatch;
    if (!batch) return true;
    if (this.batchesInFlight >= SEAL_BATCHES_PER_WORKER * this.size) return false;
    this.sealBatch = undefined;
    clearImmediate(batch.timer);
    this.batchesInFlight++;
    const answered = this.submit({
      op: 'sealBatch',
      data: batch.buffer.buffer,
      lengths: batch.lengths,
      aads: batch.aads,
    }).finally(() => {
      this.batchesInFlight--;
      this.sendSealBatch();
    });
    answered.then(
      (result) => {
        if (result.input?.byteLength === SEAL_BATCH_BYTES && this.spareBatchBuffers.length < this.size) {
          this.spareBatchBuffers.push(Buffer.from(result.input));
        }
        const { recordLengths, compressedFlags } = result;
        const count = batch.waiters.length;
        if (recordLengths?.length !== count || compressedFlags?.length !== count) {
          const err = new Error(
            `a worker returned ${recordLengths?.length} records for ${count} batched blobs`,
          );
          for (const waiter of batch.waiters) waiter.reject(err);
          return;
        }
        const records = Buffer.from(result.data);
        let offset = 0;
        batch.waiters.forEach((waiter, i) => {
          const length = recordLengths[i]!;
          waiter.resolve(sealResult([records.subarray(offset, offset + length)], compressedFlags[i]!));
          offset += length;
        });
      },
      (err: Error) => {
        for (const waiter of batch.waiters) waiter.reject(err);
      },
    );
    return true;
  }

  /** Worker threads this pool may run (0: everything on the calling thread). */
  get workerCount(): number {
    return this.size;
  }

  /**
   * Read small files (each listed with `sizes[i]` bytes, read with one read of
   * up to one byte more) on a worker, with `flags` for open(2); hash, identify
   * and seal each (associated data `aadPrefix` + blob ID). One job for the
   * batch; the records come back concatenated, in file order. Needs workers
   * and both keys.
   */
  async readFiles(
    paths: readonly Uint8Array[],
    sizes: readonly number[],
    flags: number,
    aadPrefix: string,
  ): Promise<{ files: SmallFileRead[]; records: Buffer }> {
    if (this.size === 0 || !this.sealKey || !this.blobIdKey) {
      throw new Error('this worker pool cannot read files: it has no workers or no keys');
    }
    const lengths = paths.map((p) => p.length);
    const joined = Buffer.allocUnsafeSlow(lengths.reduce((n, l) => n + l, 0));
    let at = 0;
    for (const path of paths) {
      joined.set(path, at);
      at += path.length;
    }
    const result = await this.submit({
      op: 'readFiles',
      data: joined.buffer,
      lengths,
      sizes: [...sizes],
      flags,
      aad: aadPrefix,
    });
    if (result.files?.length !== paths.length) {
      throw new Error(`a worker returned ${result.files?.length} results for ${paths.length} files`);
    }
    return { files: result.files, records: Buffer.from(result.data) };
  }

  /**
   * Create, check, write and finish restored small files on a worker, in one
   * job (see writeSmallFile in the worker's source): `contents` holds their
   * bytes back to back and `names` their paths, as `writes` lays them out.
   * Resolves with one verdict per file, in order, and `contents` handed back
   * for the next batch; rejects only when the job itself failed.
   */
  async writeFiles(
    writes: WriteFileSpec[],
    contents: Buffer,
    names: Buffer,
  ): Promise<{ written: SmallFileWritten[]; contents: Buffer }> {
    if (this.size === 0) throw new Error('this worker pool has no workers to write files with');
    const result = await this.submit({
      op: 'writeFiles',
      data: transferable(contents, true),
      names: transferable(names, false),
      writes,
    });
    if (result.written?.length !== writes.length) {
      throw new Error(`a worker returned ${result.written?.length} results for ${writes.length} files`);
    }
    return { written: result.written, contents: Buffer.from(result.data) };
  }

  /** Stop the worker threads; pending jobs fail. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('compression pool closed');
    if (this.sealBatch) {
      clearImmediate(this.sealBatch.timer);
      for (const waiter of this.sealBatch.waiters) waiter.reject(err);
      this.sealBatch = undefined;
    }
    for (const job of this.queue.splice(0)) job.reject(err);
    await Promise.all(
      this.workers.splice(0).map(async (w) => {
        for (const job of w.active.values()) job.reject(err);
        await w.worker.terminate();
      }),
    );
  }

  private inlineCodec() {
    if (!this.inline) {
      const z = zstd();
      const c = new z.Compressor();
      c.setParameters({ compressionLevel: this.level });
      this.inline = { c, d: new z.Decompressor() };
    }
    return this.inline;
  }

  private submit(message: JobMessage, pinned?: PoolWorker): Promise<JobResult> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new Error('compression pool closed'));
    return new Promise((resolve, reject) => {
      const job: Job = { seq: this.nextSeq++, message, resolve, reject };
      if (pinned) {
        // In order on its own worker: posted at once (a worker handles its messages in order).
        job.pinned = pinned;
        this.post(pinned, job);
      } else {
        this.queue.push(job);
        this.dispatch();
      }
    });
  }

  /**
   * Hand queued jobs to workers; two per worker hides the message round trip. Workers without a hash
   * stream go first (then a new one): a restore's whole-file hash (one stream, one worker) kept its worker
   * busiest while open jobs queued there too and the other worker idled.
   */
  private dispatch(): void {
    while (this.queue.length > 0) {
      let target = this.workers.find((w) => w.active.size === 0 && w.streams === 0);
      if (!target && this.workers.length < this.size) target = this.spawn();
      target ??=
        this.workers.find((w) => w.active.size < 2 && w.streams === 0) ??
        this.workers.find((w) => w.active.size === 0) ??
        this.workers.find((w) => w.active.size < 2);
      if (!target) return;
      this.post(target, this.queue.shift()!);
    }
  }

  private post(target: PoolWorker, job: Job): void {
    target.active.set(job.seq, job);
    target.worker.ref();
    const data = job.message.data;
    const transfer = data instanceof ArrayBuffer ? [data] : [];
    target.worker.postMessage({ seq: job.seq, ...job.message }, transfer);
  }

  private spawn(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        zstdPath: require.resolve('zstd-napi'),
        zstdBindingPath: require.resolve('zstd-napi/binding'),
        level: this.level,
        sealKey: this.sealKey,
        blobIdKey: this.blobIdKey,
      },
    });
    const entry: PoolWorker = { worker, active: new Map(), streams: 0 };
    // An idle worker must not keep the process alive; a busy one must.
    worker.unref();
    worker.on(
      'message',
      // What the worker posts: a JobResult (under `result` for its data), or the error that ended the job.
      (
        msg: Omit<JobResult, 'data' | 'compressed'> & {
          seq: number;
          result?: ArrayBuffer;
          compressed?: boolean;
          error?: string;
        },
      ) => {
        const job = entry.active.get(msg.seq);
        if (!job) return;
        entry.active.delete(msg.seq);
        if (entry.active.size === 0) worker.unref();
        if (msg.error !== undefined || !msg.result)
          job.reject(new Error(msg.error ?? 'no result from worker'));
        else job.resolve({ ...msg, data: msg.result, compressed: msg.compressed === true });
        this.dispatch();
      },
    );
    const fail = (cause: unknown) => {
      if (this.closed) return;
      this.broken = new OperationError('E_COMPRESSION', 'a compression worker thread stopped unexpectedly', {
        cause,
        hint: 'This is a bug or a broken zstd-napi installation; reinstall lifeboat and try again.',
      });
      for (const job of entry.active.values()) job.reject(this.broken);
      entry.active.clear();
      for (const job of this.queue.splice(0)) job.reject(this.broken);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    this.workers.push(entry);
    return entry;
  }
}

/**
 * The checks of an 'open' job on the calling thread (WORKER_SOURCE repeats
 * them for the workers): authentication, decompression to the recorded
 * length, then the keyed ID over the plaintext (unless contentChecked).
 */
function openRecord(
  keys: BlobKeys,
  record: Uint8Array,
  blob: OpenRequest,
  decompress: (frame: Uint8Array) => Buffer,
): OpenResult {
  const failed = (failure: OpenFailure): OpenResult => ({ ok: false, failure });
  const payload = unseal(keys.encryption, record, blob.associatedData);
  if (!payload) return failed({ reason: 'authentication' });
  let plain = payload;
  if (blob.compressed) {
    try {
      plain = decompress(payload);
    } catch (err) {
      return failed({ reason: 'decompression', message: (err as Error).message });
    }
    if (plain.length !== blob.rawLength) {
      const message = `decompressed to ${plain.length} bytes, expected ${blob.rawLength}`;
      return failed({ reason: 'decompression', message });
    }
  } else if (plain.length !== blob.rawLength) {
    return failed({ reason: 'length', length: plain.length });
  }
  if (!blob.contentChecked && computeBlobId(keys.blobId, plain) !== blob.id) return failed({ reason: 'id' });
  return blob.verifyOnly ? { ok: true } : { ok: true, plain };
}

function sealResult(sealed: Buffer[], compressed: boolean): SealResult {
  return { sealed, length: sealed.reduce((n, part) => n + part.length, 0), compressed };
}

/** One-shot zstd compression on the calling thread (metadata objects). */
export function zstdCompressSync(data: Uint8Array, level: number): Buffer {
  return zstd().compress(data, { compressionLevel: level });
}

/** One-shot zstd decompression on the calling thread; throws on a malformed frame. */
export function zstdDecompressSync(data: Uint8Array): Buffer {
  return zstd().decompress(data);
}
