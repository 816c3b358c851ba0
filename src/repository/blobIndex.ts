/**
 * The in-memory index: blob ID → location, merged from every index file at
 * open and extended as this process uploads packs. Duplicates are fine: the
 * first location seen wins (any copy of a blob is as good as another).
 *
 * It is held in typed arrays rather than a Map of hex strings to objects:
 * about 60 bytes per blob instead of ~250 (a hex ID string, a location object
 * and a Map entry each), and nothing for the garbage collector to trace. Every
 * process that opens a repository holds the whole index, so this is memory
 * every backup, restore and check pays for, and its heap grows by a multiple
 * of what stays live. Locations are made on demand (short-lived objects).
 *
 * Every blob of every pack is kept, copies included, each pack's blobs side by
 * side in the order listed, so a pack's full list can be given back
 * (packBlobs); the hash table points at the first location of each ID only.
 */
import type { BlobType } from './api.js';
import type { IndexedBlob, IndexedPack } from './indexFile.js';
import type { Compression } from './pack.js';

export interface BlobLocation {
  packId: string;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
  compression: Compression;
}

export interface PackSummary {
  type: BlobType;
  size: number;
  blobs: number;
}

/**
 * The packs an index lists, as IndexedPacks made on demand: each get() builds
 * the pack's blob list anew, so callers take it once per pack, not per blob.
 */
export interface IndexedPacks {
  get(id: string): IndexedPack | undefined;
  has(id: string): boolean;
  keys(): IterableIterator<string>;
  readonly size: number;
}

/** A pack as listed: its summary (handed out as is) and where its blobs sit in the entry arrays. */
interface PackRecord {
  summary: Readonly<PackSummary>;
  number: number;
  first: number;
}

const ID_BYTES = 32;
const ID_WORDS = ID_BYTES / 4;
const TREE = 1;
const ZSTD = 2;
/** The entry is its ID's first location (the one the hash table points at). */
const FIRST = 4;
/** No entry in a hash slot (slots hold entry + 1). */
const EMPTY = 0;
const isUint32 = (n: number) => Number.isInteger(n) && n >= 0 && n < 2 ** 32;

export class BlobIndex {
  /** Entry arrays, grown by doubling; `count` entries are in use. */
  private ids = new Uint32Array(1024 * ID_WORDS);
  private packOf = new Uint32Array(1024);
  private offsets = new Uint32Array(1024);
  private lengths = new Uint32Array(1024);
  private rawLengths = new Uint32Array(1024);
  private flags = new Uint8Array(1024);
  private count = 0;
  /** Open addressing, linear probing; kept at most half full. */
  private slots = new Uint32Array(4096);
  private firstLocations = 0;
  private readonly packIds: string[] = [];
  private readonly packs = new Map<string, PackRecord>();
  /** The ID being looked up, as bytes and as words (one buffer: no allocation per lookup). */
  private readonly scratch = Buffer.alloc(ID_BYTES);
  private readonly scratchWords = new Uint32Array(this.scratch.buffer, this.scratch.byteOffset, ID_WORDS);

  /** Record every blob of a pack (keeps earlier locations of blobs already known). */
  addPack(pack: IndexedPack): void {
    let record = this.packs.get(pack.id);
    if (record) {
      // Listed again: only blobs the first listing lacked are new (kept as locations, outside its list).
      for (const b of pack.blobs) {
        this.parse(b.id);
        if (this.lookup() < 0) this.addEntry(record.number, pack.type, b, true);
      }
      return;
    }
    record = {
      summary: { type: pack.type, size: pack.size, blobs: pack.blobs.length },
      number: this.packIds.length,
      first: this.count,
    };
    this.packIds.push(pack.id);
    this.packs.set(pack.id, record);
    for (const b of pack.blobs) {
      this.parse(b.id);
      this.addEntry(record.number, pack.type, b, this.lookup() < 0);
    }
  }

  get(id: string): BlobLocation | undefined {
    const entry = this.find(id);
    return entry < 0 ? undefined : this.location(entry);
  }

  has(id: string): boolean {
    return this.find(id) >= 0;
  }

  /** Distinct blob IDs. */
  get blobCount(): number {
    return this.firstLocations;
  }

  /** Every known blob and where it is (its first location). */
  *entries(): IterableIterator<[string, BlobLocation]> {
    for (let e = 0; e < this.count; e++) if (this.flags[e]! & FIRST) yield [this.idHex(e), this.location(e)];
  }

  /** Every pack some index file lists. */
  *packEntries(): IterableIterator<[string, Readonly<PackSummary>]> {
    for (const [id, record] of this.packs) yield [id, record.summary];
  }

  hasPack(id: string): boolean {
    return this.packs.has(id);
  }

  pack(id: string): Readonly<PackSummary> | undefined {
    return this.packs.get(id)?.summary;
  }

  /** The blobs of a pack as its first listing gave them (new objects), or undefined for an unknown pack. */
  packBlobs(id: string): IndexedBlob[] | undefined {
    const record = this.packs.get(id);
    if (!record) return undefined;
    const out: IndexedBlob[] = [];
    for (let e = record.first; e < record.first + record.summary.blobs; e++) out.push(this.listed(e));
    return out;
  }

  private listed(entry: number): IndexedBlob {
    return {
      id: this.idHex(entry),
      offset: this.offsets[entry]!,
      length: this.lengths[entry]!,
      rawLength: this.rawLengths[entry]!,
      compression: this.flags[entry]! & ZSTD ? 'zstd' : 'none',
    };
  }

  /** Where a pack's first listing puts blob `id` (a scan of that pack's entries), or undefined. */
  blobIn(packId: string, id: string): IndexedBlob | undefined {
    const record = this.packs.get(packId);
    if (!record || !this.tryParse(id)) return undefined;
    for (let e = record.first; e < record.first + record.summary.blobs; e++) {
      if (this.sameId(e, this.scratchWords)) return this.listed(e);
    }
    return undefined;
  }

  /** The packs as their first listings gave them (see IndexedPacks). */
  indexedPacks(): IndexedPacks {
    const packs = this.packs;
    return {
      get: (id) => {
        const record = packs.get(id);
        return record && { id, ...record.summary, blobs: this.packBlobs(id)! };
      },
      has: (id) => packs.has(id),
      keys: () => packs.keys(),
      get size() {
        return packs.size;
      },
    };
  }

  private location(entry: number): BlobLocation {
    const flags = this.flags[entry]!;
    return {
      packId: this.packIds[this.packOf[entry]!]!,
      type: flags & TREE ? 'tree' : 'data',
      offset: this.offsets[entry]!,
      length: this.lengths[entry]!,
      rawLength: this.rawLengths[entry]!,
      compression: flags & ZSTD ? 'zstd' : 'none',
    };
  }

  private idHex(entry: number): string {
    return Buffer.from(this.ids.buffer, entry * ID_BYTES, ID_BYTES).toString('hex');
  }

  /** The entry of `id`'s first location, or -1 (also for a string that is not a 64-digit hex ID). */
  private find(id: string): number {
    return this.tryParse(id) ? this.lookup() : -1;
  }

  /** Parse `id` into scratch; false when it is not a 64-digit hex ID. */
  private tryParse(id: string): boolean {
    return id.length === ID_BYTES * 2 && this.scratch.write(id, 'hex') === ID_BYTES;
  }

  /** tryParse() for IDs that must be valid (an index listing): throws otherwise. */
  private parse(id: string): void {
    if (!this.tryParse(id))
      throw new Error(`invalid blob ID in an index listing: ${JSON.stringify(id.slice(0, 80))}`);
  }

  /** The entry of the ID in scratch, or -1. */
  private lookup(): number {
    const words = this.scratchWords;
    const mask = this.slots.length - 1;
    // IDs are keyed hashes: their first word is as good a hash as any.
    for (let s = words[0]! & mask; ; s = (s + 1) & mask) {
      const slot = this.slots[s]!;
      if (slot === EMPTY) return -1;
      if (this.sameId(slot - 1, words)) return slot - 1;
    }
  }

  private sameId(entry: number, words: Uint32Array): boolean {
    const at = entry * ID_WORDS;
    for (let w = 0; w < ID_WORDS; w++) if (this.ids[at + w] !== words[w]) return false;
    return true;
  }

  /** Append an entry for `blob` (whose ID parse() just put into scratch); `first`: it is the ID's first location. */
  private addEntry(pack: number, type: BlobType, blob: IndexedBlob, first: boolean): void {
    if (this.count === this.packOf.length) this.growEntries();
    if (!isUint32(blob.offset) || !isUint32(blob.length) || !isUint32(blob.rawLength)) {
      throw new Error(`blob ${this.scratch.toString('hex')} has an offset or length beyond 4 GiB`);
    }
    const entry = this.count++;
    this.ids.set(this.scratchWords, entry * ID_WORDS);
    this.packOf[entry] = pack;
    this.offsets[entry] = blob.offset;
    this.lengths[entry] = blob.length;
    this.rawLengths[entry] = blob.rawLength;
    this.flags[entry] =
      (type === 'tree' ? TREE : 0) | (blob.compression === 'zstd' ? ZSTD : 0) | (first ? FIRST : 0);
    if (!first) return;
    if ((this.firstLocations + 1) * 2 > this.slots.length) this.growSlots();
    this.place(entry);
    this.firstLocations++;
  }

  private place(entry: number): void {
    const mask = this.slots.length - 1;
    let s = this.ids[entry * ID_WORDS]! & mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & mask;
    this.slots[s] = entry + 1;
  }

  private growEntries(): void {
    const grow = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(a.length * 2);
      b.set(a);
      return b;
    };
    this.ids = grow(this.ids, (n) => new Uint32Array(n));
    this.packOf = grow(this.packOf, (n) => new Uint32Array(n));
    this.offsets = grow(this.offsets, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint32Array(n));
    this.rawLengths = grow(this.rawLengths, (n) => new Uint32Array(n));
    this.flags = grow(this.flags, (n) => new Uint8Array(n));
  }

  private growSlots(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (const slot of old) if (slot !== EMPTY) this.place(slot - 1);
  }
}
