/**
 * Small reads (tree blobs) served from a few recently read windows of their
 * packs. A restore or an incremental backup loads one tree per directory;
 * a backup stores a directory's tree right after those of its
 * subdirectories, so the trees a walk needs next are mostly within a few
 * hundred KiB before the one it reads now. One ranged read of such a window
 * replaces dozens of tiny reads. Memory: at most `windows` × `windowSize`.
 */

export type RangeRead = (packId: string, offset: number, length: number) => Promise<Buffer>;

interface Window {
  packId: string;
  offset: number;
  bytes: Promise<Buffer>;
}

export class PackWindows {
  /** Most recently used last. */
  private readonly recent: Window[] = [];

  constructor(
    private readonly read: RangeRead,
    private readonly windowSize = 512 * 1024,
    private readonly windows = 4,
  ) {}

  /** The bytes [offset, offset + length) of a pack (shorter when the pack is). */
  async get(packId: string, offset: number, length: number): Promise<Buffer> {
    if (length > this.windowSize / 2) return this.read(packId, offset, length);
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const w = this.recent[i]!;
      if (w.packId !== packId || offset < w.offset || offset + length > w.offset + this.windowSize) continue;
      const bytes = await w.bytes;
      // Past the end of a shorter window (the pack's end): read it as asked, so a truncated pack shows.
      if (offset + length > w.offset + bytes.length) break;
      const at = this.recent.indexOf(w); // the list may have changed while waiting
      if (at >= 0) this.recent.push(...this.recent.splice(at, 1));
      return bytes.subarray(offset - w.offset, offset + length - w.offset);
    }
    // Mostly backwards: the window ends a quarter past the blob.
    const start = Math.max(0, offset + length + this.windowSize / 4 - this.windowSize);
    const w: Window = { packId, offset: start, bytes: this.read(packId, start, this.windowSize) };
    this.recent.push(w);
    if (this.recent.length > this.windows) this.recent.shift();
    try {
      const bytes = await w.bytes;
      return bytes.subarray(
        Math.min(offset - start, bytes.length),
        Math.min(offset + length - start, bytes.length),
      );
    } catch (err) {
      const at = this.recent.indexOf(w);
      if (at >= 0) this.recent.splice(at, 1);
      throw err;
    }
  }
}
