import { runCli } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process with captured output, as a user would call `lifeboat …`. */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['node', 'lifeboat', ...args], {
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    env: { ...process.env, NO_COLOR: '1', ...env },
    stderrIsTty: false,
  });
  return { code, stdout, stderr };
}
