/** External tools some report tests need (xmllint, chromium), probed once; see describeWith. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Facility } from '../../helpers/loop.js';

const exec = promisify(execFile);

/** Is `cmd` on PATH? The facility names the Debian package to install otherwise. */
export async function probeCommand(cmd: string, pkg: string): Promise<Facility> {
  try {
    await exec('sh', ['-c', `command -v ${cmd}`]);
    return { ok: true };
  } catch {
    return { ok: false, reason: `${cmd} is not installed (apt-get install ${pkg})` };
  }
}

/** Validate an XML file against an XSD with xmllint; returns xmllint's exit code and messages. */
export async function xmllintSchema(file: string, xsd: string): Promise<{ code: number; output: string }> {
  try {
    const r = await exec('xmllint', ['--noout', '--nonet', '--schema', xsd, file]);
    return { code: 0, output: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
