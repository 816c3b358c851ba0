/**
 * The holes of a sparse file being backed up, so that they need not be read.
 * Reading a hole costs the kernel a page of zeros per 4 KiB (and fills the
 * page cache with them), the reader a zero check and a copy; a sparse disk
 * image is mostly holes. Node.js has no lseek(SEEK_DATA/SEEK_HOLE), so the map
 * comes from FIEMAP through `filefrag`, as for image jobs (platform/extentMap.ts,
 * which also decides when a map is trustworthy): any doubt means no map, and
 * the file is read in full. The file is named by its open descriptor
 * (/proc/<pid>/fd/<n>), so the map is of the very file being read.
 */
import type { FileHandle } from 'node:fs/promises';
import { dataRanges, type DataRanges } from '../../platform/extentMap.js';

/**
 * Files missing fewer allocated bytes than this are read in full: running
 * filefrag (~15 ms) costs about what reading that much of holes does.
 */
export const SPARSE_MIN_HOLES = 16 * 1024 * 1024;

/**
 * Devices where a map could not be had (no FIEMAP, as on some network file
 * systems that report no blocks at all): their files are read without trying
 * again, so that a share full of large files does not run filefrag for each.
 */
const unmappable = new Set<number>();

/** Where the open file `fh` of `size` bytes holds data, or undefined: read it all (see the file comment). */
export async function sparseDataRanges(fh: FileHandle, size: number): Promise<DataRanges | undefined> {
  let allocated: number;
  let dev: number;
  try {
    const st = await fh.stat();
    allocated = st.blocks * 512;
    dev = st.dev;
  } catch {
    return undefined; // the read that follows reports the problem
  }
  if (size - allocated < SPARSE_MIN_HOLES || unmappable.has(dev)) return undefined;
  const ranges = await dataRanges(`/proc/${process.pid}/fd/${fh.fd}`, allocated);
  if (!ranges) unmappable.add(dev);
  return ranges;
}

/** Answers "is [from, to) all hole?" from a data map. */
export class HoleMap {
  constructor(private readonly ranges: DataRanges) {}

  /** True when no data range overlaps [from, to). */
  isHole(from: number, to: number): boolean {
    // The first range ending after `from` (binary search: ranges are sorted and disjoint).
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid]![1] <= from) lo = mid + 1;
      else hi = mid;
    }
    const range = this.ranges[lo];
    return range === undefined || range[0] >= to;
  }
}
