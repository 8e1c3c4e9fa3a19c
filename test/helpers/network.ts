import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { formatLoginServerKey, loadOrCreateLoginKey } from '../../src/login/login-key.js';
import { AccountStore } from '../../src/login/account-store.js';
import type { Identity } from '../../src/crypto/identity.js';
import { spawnCli } from './process.js';
import type { Launcher, Spawned } from './process.js';

/** Where a lab process runs: the local machine (loopback), or a host of a NetLab. */
export interface Placement {
  /** Address the process listens on and others reach it at. */
  address: string;
  launch?: Launcher;
}

const LOCAL: Placement = { address: '127.0.0.1' };

export const PASSWORD = 'correct-horse-battery';

/**
 * Loopback ports for one test file: a block per vitest worker, below the
 * range nodes pick their own port from (20000–32000) and below the kernel's
 * ephemeral range (32768–60999), where any socket bound to port 0 or any
 * outgoing connection may hold a port a later test wants to listen on.
 */
export function portBlock(offset: number): (i: number) => number {
  const base = 12_000 + (Number(process.env.VITEST_POOL_ID ?? 1) % 16) * 400 + offset;
  return (i: number) => base + i;
}

export interface LabNode {
  name: string;
  dir: string;
  configPath: string;
  config: Record<string, unknown>;
  proc: Spawned;
  port: number;
  control: string;
  at: Placement;
}

/**
 * A Partyline network of real processes on loopback: one login server, some
 * supernodes, some phones — each its own `partyline` process with its own
 * state directory and YAML configuration, as an operator would run them.
 */
export class LabNetwork {
  readonly root: string;
  readonly network: string;
  readonly loginDir: string;
  loginPort: number;
  loginKey = '';
  loginIdentity: Identity | undefined;
  login: Spawned | undefined;
  readonly nodes = new Map<string, LabNode>();

  private constructor(root: string, network: string, loginPort: number) {
    this.root = root;
    this.network = network;
    this.loginDir = join(root, 'login');
    this.loginPort = loginPort;
  }

  static async create(options: { network?: string; loginPort: number; users: string[] }): Promise<LabNetwork> {
    const root = await mkdtemp(join(tmpdir(), 'pl-lab-'));
    const lab = new LabNetwork(root, options.network ?? 'lab', options.loginPort);
    await mkdir(lab.loginDir, { recursive: true });
    const key = await loadOrCreateLoginKey(lab.loginDir);
    lab.loginIdentity = key.identity;
    lab.loginKey = formatLoginServerKey(key.identity);
    const store = AccountStore.open(lab.loginDir, { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
    try {
      for (const user of options.users) await store.addUser(user, PASSWORD);
    } finally {
      store.close();
    }
    return lab;
  }

  /** Where the login server runs (its address goes into every node's configuration). */
  loginAt: Placement = LOCAL;

  async startLoginServer(at: Placement = this.loginAt): Promise<void> {
    this.loginAt = at;
    this.login = spawnCli(['login-server', '--data', this.loginDir, '--listen', `${at.address}:${this.loginPort}`, '--network', this.network, '--log-level', 'info'], {}, at.launch);
    await this.login.waitFor((l) => l.msg === 'login server started');
  }

  async stopLoginServer(): Promise<void> {
    await this.login?.stop();
    this.login = undefined;
  }

  /** Start a node process. `overrides` is merged into its YAML configuration. */
  async start(name: string, options: { port: number; at?: Placement; supernode?: boolean; user?: string; password?: string; bootstrap?: string[]; loginAddress?: string; keepAliveS?: number; extra?: Record<string, unknown>; waitFor?: string }): Promise<LabNode> {
    const at = options.at ?? LOCAL;
    const dir = join(this.root, name);
    await mkdir(dir, { recursive: true });
    const control = join(dir, 'c.sock');
    const config: Record<string, unknown> = {
      node: { stateDir: dir, listen: at.address, port: options.port, control },
      network: {
        name: this.network,
        loginServer: { address: options.loginAddress ?? `${this.loginAt.address}:${this.loginPort}`, publicKey: this.loginKey },
        bootstrap: options.bootstrap ?? [],
        mdns: false,
        keepAliveS: options.keepAliveS ?? 5,
      },
      account: { user: options.user ?? name, password: options.password ?? PASSWORD },
      supernode: { policy: options.supernode ? 'always' : 'never', attachTimeoutS: 2 },
      log: { level: process.env.LAB_LOG_LEVEL ?? 'info' },
      ...options.extra,
    };
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, stringify(config));
    const proc = spawnCli(['start', '--config', configPath], {}, at.launch);
    const node: LabNode = { name, dir, configPath, config, proc, port: options.port, control, at };
    this.nodes.set(name, node);
    // Generous: a test may start twenty processes at once on two busy cores; start-up time is measured by bench/, not here.
    await proc.waitFor((l) => l.msg === (options.waitFor ?? 'node started'), 30_000).catch((err: unknown) => {
      const last = proc.lines.slice(-5).map((l) => JSON.stringify(l)).join('\n');
      throw new Error(`${name}: ${(err as Error).message}; last log lines:\n${last}`);
    });
    return node;
  }

  /** Start an existing node again with its configuration and state directory. */
  async restart(name: string, waitFor = 'node started'): Promise<LabNode> {
    const node = this.nodes.get(name)!;
    await node.proc.stop();
    node.proc = spawnCli(['start', '--config', node.configPath], {}, node.at.launch);
    await node.proc.waitFor((l) => l.msg === waitFor);
    return node;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.proc.stop()));
    await this.stopLoginServer();
  }
}

export async function writeYaml(path: string, value: unknown): Promise<void> {
  await writeFile(path, stringify(value));
}
