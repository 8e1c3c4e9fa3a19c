/**
 * The MQTT commands (`cmd/<name>`): the control API's handlers where there
 * is one — `status`, `call`, `hangup` go through the node's ControlRegistry
 * exactly as `partyline ctl` does (DESIGN.md "The MQTT commands and the
 * terminal UI use the same handlers") — plus `reboot` (restart the node in
 * this process with the configuration read again) and `log-level`.
 */
import { z } from 'zod';
import { LOG_LEVELS } from '../config/schema.js';
import { PartylineError } from '../errors.js';
import { formatIssues } from '../control/issues.js';
import type { ControlRegistry } from '../control/registry.js';
import type { LogLevels } from './log-levels.js';
import type { CommandName } from './topics.js';

export interface CommandPorts {
  /** The registry of the node running now. */
  controls: () => ControlRegistry;
  logLevels: LogLevels;
  /** Restart the node (after the response has gone out). */
  reboot: () => void;
}

const logLevelArgs = z.object({ level: z.enum(LOG_LEVELS), component: z.string().regex(/^[a-z][a-z0-9-]*$/).optional() }).strict();
const rebootArgs = z.object({}).strict();

/** Run one command. Throws PartylineError (stable code) for anything the caller should see. */
export async function runCommand(name: CommandName, args: Record<string, unknown>, ports: CommandPorts): Promise<unknown> {
  switch (name) {
    case 'status':
    case 'call':
    case 'hangup':
      return ports.controls().invoke(name, args, { origin: 'mqtt' });
    case 'log-level': {
      const parsed = logLevelArgs.safeParse(args);
      if (!parsed.success) throw new PartylineError('ERR_CONTROL_ARGS', `log-level: invalid arguments: ${formatIssues(parsed.error, args, logLevelArgs).join('; ')}`);
      return ports.logLevels.set(parsed.data.level, parsed.data.component);
    }
    case 'reboot': {
      const parsed = rebootArgs.safeParse(args);
      if (!parsed.success) throw new PartylineError('ERR_CONTROL_ARGS', `reboot: invalid arguments: ${formatIssues(parsed.error, args, rebootArgs).join('; ')}`);
      ports.reboot();
      return { restarting: true };
    }
  }
}
