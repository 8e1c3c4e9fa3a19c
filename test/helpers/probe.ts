import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { probeReportSchema } from '../../src/cli/ctl-probe.js';
import type { ProbeReportView } from '../../src/cli/ctl-probe.js';
import { CLI } from './process.js';

const run = promisify(execFile);

/**
 * Run the built `partyline ctl probe USER --json` against a node's control
 * socket, as a user would, and return the report it prints, checked
 * against the schema of `ctl probe`'s result.
 */
export async function ctlProbeJson(control: string, user: string, options: { seconds?: number; timeoutMs?: number } = {}): Promise<ProbeReportView> {
  const args = [CLI, 'ctl', '--socket', control, 'probe', user, '--json'];
  if (options.seconds !== undefined) args.push('--seconds', String(options.seconds));
  if (options.timeoutMs !== undefined) args.push('--timeout', String(options.timeoutMs));
  const { stdout } = await run(process.execPath, args);
  return probeReportSchema.parse(JSON.parse(stdout));
}
