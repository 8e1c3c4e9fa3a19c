import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PartylineError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/** Small facts a node keeps between starts (in `<stateDir>/node.json`). */
export interface NodeState {
  version: 1;
  /** The port chosen at first start when `node.port` is 0. */
  port: number;
}

export const NODE_STATE_FILE = 'node.json';
/** Random ports are drawn from here: above the registered range, below the usual ephemeral range. */
const RANDOM_PORT_MIN = 20_000;
const RANDOM_PORT_MAX = 32_000;

export function randomPort(random: () => number = Math.random): number {
  return RANDOM_PORT_MIN + Math.floor(random() * (RANDOM_PORT_MAX - RANDOM_PORT_MIN));
}

export async function readNodeState(stateDir: string): Promise<NodeState | undefined> {
  const path = join(stateDir, NODE_STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PartylineError('ERR_STATE_READ', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: Partial<NodeState>;
  try {
    value = JSON.parse(text) as Partial<NodeState>;
  } catch (err) {
    throw new PartylineError('ERR_STATE_FORMAT', `${path}: not valid JSON`, { cause: err });
  }
  if (value.version !== 1 || !Number.isInteger(value.port) || value.port! < 1 || value.port! > 65535) {
    throw new PartylineError('ERR_STATE_FORMAT', `${path}: expected {"version":1,"port":1..65535}`);
  }
  return value as NodeState;
}

export async function writeNodeState(stateDir: string, state: NodeState): Promise<void> {
  await writeFileAtomic(join(stateDir, NODE_STATE_FILE), `${JSON.stringify(state)}\n`, { mode: 0o600 });
}
