import type { NodeStatus } from '../../src/app/node.js';
import type { CallLogEntry } from '../../src/call/call-manager.js';
import { callControl } from '../../src/control/client.js';
import type { LabNetwork } from '../helpers/network.js';

/** Control-socket shortcuts for the call tests' phones. */
export function callControls(lab: () => LabNetwork): {
  ctl: (name: string, command: string, args?: Record<string, unknown>) => Promise<unknown>;
  status: (name: string) => Promise<NodeStatus>;
  callState: (name: string) => Promise<string | null>;
  history: (name: string) => Promise<CallLogEntry[]>;
} {
  const ctl = (name: string, command: string, args: Record<string, unknown> = {}): Promise<unknown> => callControl(lab().nodes.get(name)!.control, command, args, { timeoutMs: 20_000 });
  const status = async (name: string): Promise<NodeStatus> => (await ctl(name, 'status')) as NodeStatus;
  return {
    ctl,
    status,
    callState: async (name) => (await status(name)).call?.state ?? null,
    history: async (name) => (await ctl(name, 'calls')) as CallLogEntry[],
  };
}
