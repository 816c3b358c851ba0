/**
 * Where a sparse image file holds data, so that its holes need not be read.
 * Node.js has no lseek(SEEK_DATA), so the extent map comes from the kernel's
 * FIEMAP through `filefrag -v` (e2fsprogs). It is only an optimization: any
 * doubt (filefrag missing or failing, unsupported filesystem, output not
 * understood, a map covering less than the space the file occupies) gives
 * `undefined`, and the image is then read in full. Reading a hole costs the
 * kernel a page of zeros per 4 KiB (about 1.8 s of system time per GiB when
 * not cached), and fills the page cache with them.
 */
import { run } from './exec.js';

/** Byte ranges [start, end) holding data (or possibly data), sorted and merged. */
export type DataRanges = Array<[number, number]>;

/** Larger outputs (hundreds of thousands of extents) are not worth parsing; the file is read in full. */
const MAX_EXTENT_LINES = 200_000;

/**
 * Parse `filefrag -v` output into data ranges, or undefined when it is not
 * the FIEMAP listing expected. Every extent counts as data, whatever its
 * flags (unwritten, delalloc, inline…): only the gaps between extents are holes.
 */
export function parseFilefrag(output: string): DataRanges | undefined {
  let unit: number | undefined;
  let sawTrailer = false;
  const ranges: DataRanges = [];
  const lines = output.split('\n');
  if (lines.length > MAX_EXTENT_LINES) return undefined;
  for (const line of lines) {
    if (line.trim() === '' || line.startsWith('Filesystem type is:')) continue;
    const size = /^File size of .* is \d+ \(\d+ blocks? of (\d+) bytes\)$/.exec(line);
    if (size) {
      unit = Number(size[1]);
      continue;
    }
    if (/^\s*ext:\s+logical_offset:/.test(line)) continue;
    const extent = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):/.exec(line);
    if (extent) {
      if (unit === undefined) return undefined;
      const start = Number(extent[1]) * unit;
      const end = (Number(extent[2]) + 1) * unit;
      const last = ranges.at(-1);
      if (last && start < last[0]) return undefined; // FIEMAP lists extents in order; anything else is suspect
      if (last && start <= last[1]) last[1] = Math.max(last[1], end);
      else ranges.push([start, end]);
      continue;
    }
    if (/: \d+ extents? found$/.test(line)) {
      sawTrailer = true;
      continue;
    }
    return undefined; // e.g. a FIBMAP fallback or a message: do not guess
  }
  return unit !== undefined && sawTrailer ? ranges : undefined;
}

/**
 * Data ranges of a regular file, or undefined when unknown (see the file
 * comment). `allocatedBytes` (st_blocks × 512) guards against a map that
 * misses data: the extents must cover about as much as the file occupies.
 */
export async function dataRanges(
  path: string,
  allocatedBytes: number,
  env?: NodeJS.ProcessEnv,
): Promise<DataRanges | undefined> {
  let stdout: string;
  try {
    const result = await run(['filefrag', '-v', path], { env, timeoutMs: 30_000 });
    if (result.code !== 0) return undefined;
    stdout = result.stdout;
  } catch {
    return undefined; // filefrag is not installed
  }
  const ranges = parseFilefrag(stdout);
  if (!ranges) return undefined;
  const mapped = ranges.reduce((n, [start, end]) => n + (end - start), 0);
  // Extent-tree blocks count in st_blocks but are not data: allow a little slack.
  const slack = 1024 * 1024 + allocatedBytes / 100;
  return mapped + slack >= allocatedBytes ? ranges : undefined;
}
