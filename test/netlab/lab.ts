/**
 * A network lab of Linux network namespaces: an "internet" bridge, public
 * hosts on it, and private LANs behind router namespaces that do real NAT
 * with nftables. Everything the lab creates carries its prefix and is torn
 * down by destroy(), by the test process's exit/signal handlers, or by
 * NetLab.cleanupStale() on a later run. Nothing touches the root namespace's
 * interfaces, routes, rules or sysctls: links are created from inside the
 * internet namespace straight into their target namespaces.
 */
import { spawn as spawnChild } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { NetLabError, findBinary, run, runChecked, runSync } from './commands.js';
import type { ExecResult } from './commands.js';
import { LAN_IF, WAN_IF, natRuleset } from './nat-rules.js';
import {
  INTERNET_PREFIX_LEN, LAN_PREFIX_LEN, layout, validateSpec,
} from './topology.js';
import type { LabHost, LabSpec } from './topology.js';

export type { NatKind } from './nat-rules.js';
export { EXPECTED_NAT_TYPE, NAT_KINDS } from './nat-rules.js';
export type { LabHost, LabSpec, LanSpec, PublicHostSpec } from './topology.js';
export type { ExecResult } from './commands.js';
export { NetLabError } from './commands.js';

export interface NetLabOptions {
  /** Namespace name prefix; default `pl<pid>-<n>-` (what cleanupStale() recognises). Must not be in use. */
  prefix?: string;
}

export interface LabExecOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

interface Tools {
  ip: string;
  nft: string;
  sysctl: string;
}

/** Default prefixes look like `pl12345-0-`: the creating process's pid lets cleanupStale() leave live labs alone. */
const STALE_PATTERN = /^pl(\d+)-\d+-/;
const INTERNET = 'inet';
/**
 * Where the kernel has br_netfilter (built in on these machines), bridged
 * frames also traverse the namespace's IP hooks; switch that off inside our
 * namespaces so a LAN switch and the internet bridge stay plain switches.
 * `sysctl -e` ignores the keys where br_netfilter is absent.
 */
const BRIDGE_NF_OFF = ['net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0'];
const BRIDGE = 'br0';
let labCounter = 0;

function resolveTools(): Tools | string {
  const ip = findBinary('ip');
  const nft = findBinary('nft');
  const sysctl = findBinary('sysctl');
  const missing = [!ip && 'ip (iproute2)', !nft && 'nft (nftables)', !sysctl && 'sysctl (procps)'].filter(Boolean);
  if (missing.length > 0 || !ip || !nft || !sysctl) return `missing ${missing.join(', ')}`;
  return { ip, nft, sysctl };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Namespace names from `ip netns list` ("name" or "name (id: 3)" per line). */
function parseNetnsList(stdout: string): string[] {
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.length > 0);
}

export class NetLab {
  static #live = new Set<NetLab>();
  static #handlersInstalled = false;
  static #available: Promise<{ ok: boolean; reason?: string }> | undefined;

  readonly prefix: string;
  /** Wall-clock milliseconds create() took, and destroy() once it has run. */
  readonly timings: { setupMs: number; teardownMs?: number } = { setupMs: 0 };
  readonly #tools: Tools;
  readonly #nodes: Map<string, LabHost>;
  readonly #children = new Set<ChildProcess>();
  #destroyed: Promise<void> | undefined;

  private constructor(prefix: string, tools: Tools, nodes: LabHost[]) {
    this.prefix = prefix;
    this.#tools = tools;
    this.#nodes = new Map(nodes.map((n) => [n.name, n]));
  }

  /**
   * Whether this machine can build a lab: Linux, root, ip/nft/sysctl present,
   * and a throw-away namespace with a bridge and a NAT table really works.
   */
  static available(): Promise<{ ok: boolean; reason?: string }> {
    NetLab.#available ??= NetLab.#probe();
    return NetLab.#available;
  }

  static async #probe(): Promise<{ ok: boolean; reason?: string }> {
    if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux, this is ${process.platform}` };
    const uid = process.getuid?.();
    if (uid !== 0) return { ok: false, reason: `not root (uid ${String(uid)}): creating network namespaces needs root` };
    const tools = resolveTools();
    if (typeof tools === 'string') return { ok: false, reason: `${tools}; install iproute2, nftables and procps` };
    const ns = `pl${process.pid}-${labCounter++}-probe`;
    try {
      await runChecked(tools.ip, ['netns', 'add', ns]);
      await runChecked(tools.ip, ['-n', ns, '-batch', '-'], { input: `link add ${BRIDGE} type bridge\nlink add v0 type veth peer name v1\nlink set v0 master ${BRIDGE}\n` });
      await runChecked(tools.ip, ['netns', 'exec', ns, tools.sysctl, '-q', '-w', 'net.ipv4.ip_forward=1']);
      await runChecked(tools.ip, ['netns', 'exec', ns, tools.nft, '-f', '-'], { input: natRuleset('full-cone') });
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `a test namespace does not work here: ${(err as Error).message}` };
    } finally {
      await run(tools.ip, ['netns', 'del', ns]);
    }
  }

  /**
   * Remove namespaces left by crashed runs: every namespace matching the
   * pattern, except those whose creator (the pid in the pattern's first
   * capture group, if it has one) is still alive. Returns the names removed.
   */
  static async cleanupStale(prefixPattern: RegExp = STALE_PATTERN): Promise<string[]> {
    const tools = resolveTools();
    if (typeof tools === 'string') return [];
    const listed = await runChecked(tools.ip, ['netns', 'list']);
    const stale = parseNetnsList(listed.stdout).filter((name) => {
      const m = prefixPattern.exec(name);
      if (!m) return false;
      const pid = m[1] === undefined ? NaN : Number(m[1]);
      return !(Number.isInteger(pid) && isAlive(pid));
    });
    await NetLab.#deleteNamespaces(tools, stale);
    return stale;
  }

  /** Build the lab. On any failure, everything already created is removed before the error is thrown. */
  static async create(spec: LabSpec, options: NetLabOptions = {}): Promise<NetLab> {
    const started = performance.now();
    const valid = validateSpec(spec);
    const prefix = options.prefix ?? `pl${process.pid}-${labCounter++}-`;
    if (!/^[A-Za-z0-9_.-]{1,30}$/.test(prefix)) throw new NetLabError('ERR_NETLAB_SPEC', `prefix ${JSON.stringify(prefix)}: expected 1–30 of A-Z a-z 0-9 _ . -`);
    const tools = resolveTools();
    if (typeof tools === 'string') throw new NetLabError('ERR_NETLAB_UNAVAILABLE', tools);
    const existing = parseNetnsList((await runChecked(tools.ip, ['netns', 'list'])).stdout).filter((n) => n.startsWith(prefix));
    if (existing.length > 0) throw new NetLabError('ERR_NETLAB_PREFIX_IN_USE', `prefix "${prefix}" is in use by namespaces ${existing.join(', ')}`);

    const lab = new NetLab(prefix, tools, layout(valid, prefix));
    NetLab.#register(lab);
    try {
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    lab.timings.setupMs = performance.now() - started;
    return lab;
  }

  /** The internet namespace's name. */
  get internetNamespace(): string {
    return this.prefix + INTERNET;
  }

  /** Public hosts and LAN hosts (not routers). */
  hosts(): LabHost[] {
    return [...this.#nodes.values()].filter((n) => n.role !== 'router').map((n) => ({ ...n, addresses: [...n.addresses] }));
  }

  /** A host, or with a LAN's name its router. */
  node(name: string): LabHost {
    const node = this.#nodes.get(name);
    if (!node) throw new NetLabError('ERR_NETLAB_UNKNOWN_HOST', `no host or LAN named "${name}" in lab ${this.prefix} (known: ${[...this.#nodes.keys()].join(', ')})`);
    return { ...node, addresses: [...node.addresses] };
  }

  /** The host's own IP address (for a LAN name, the router's WAN address). */
  address(host: string): string {
    return this.node(host).address;
  }

  /** All of a host's addresses (public hosts with `addresses: 2` have two). */
  addresses(host: string): string[] {
    return this.node(host).addresses;
  }

  /** The address the internet sees for a LAN (its router's WAN address) or host (NATed hosts: their router's). */
  publicAddress(lanOrHost: string): string {
    return this.node(lanOrHost).publicAddress;
  }

  /** The namespace a host (or, by LAN name, a router) lives in, for `ip netns exec` by hand. */
  namespace(host: string): string {
    return this.node(host).namespace;
  }

  /** Run a command inside a host's namespace; resolves whatever the exit status. */
  async exec(host: string, cmd: string, args: readonly string[] = [], opts: LabExecOptions = {}): Promise<ExecResult> {
    this.#assertUsable();
    return run(this.#tools.ip, ['netns', 'exec', this.namespace(host), cmd, ...args], opts);
  }

  /** Start a process inside a host's namespace. destroy() kills it if it is still running. */
  spawn(host: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.#assertUsable();
    // `ip netns exec` execs the command in place, so child.pid is the command's own pid.
    const child = spawnChild(this.#tools.ip, ['netns', 'exec', this.namespace(host), cmd, ...args], { stdio: 'pipe', ...opts });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /**
   * Kill what the lab started, then every other process still inside its
   * namespaces, then delete the namespaces (which destroys their veths,
   * bridges, routes and nft tables). Idempotent; concurrent calls share one run.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  get destroyed(): boolean {
    return this.#destroyed !== undefined;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new NetLabError('ERR_NETLAB_DESTROYED', `lab ${this.prefix} has been destroyed`);
  }

  async #build(): Promise<void> {
    const { ip } = this.#tools;
    const nodes = [...this.#nodes.values()];
    const inet = this.internetNamespace;
    await runChecked(ip, ['-batch', '-'], { input: [inet, ...nodes.map((n) => n.namespace)].map((ns) => `netns add ${ns}\n`).join('') });

    // All links are made from inside the internet namespace, each end created directly in its target namespace.
    const links = [`link set lo up`, `link add ${BRIDGE} type bridge`, `link set ${BRIDGE} up`];
    let pub = 0;
    let rtr = 0;
    for (const node of nodes) {
      if (node.role === 'public' || node.role === 'router') {
        const port = node.role === 'public' ? `h${pub++}` : `r${rtr++}`;
        links.push(`link add ${port} type veth peer name ${node.role === 'public' ? 'eth0' : WAN_IF} netns ${node.namespace}`, `link set ${port} master ${BRIDGE} up`);
      }
    }
    // LAN host m's veth is l<m> in its router's namespace, eth0 in its own.
    const routerPorts = new Map<string, string[]>();
    for (const node of nodes.filter((n) => n.role === 'lan')) {
      const ports = routerPorts.get(node.lan!) ?? [];
      const port = `l${ports.length}`;
      routerPorts.set(node.lan!, [...ports, port]);
      links.push(`link add ${port} netns ${this.#nodes.get(node.lan!)!.namespace} type veth peer name eth0 netns ${node.namespace}`);
    }
    await Promise.all([
      runChecked(ip, ['-n', inet, '-batch', '-'], { input: links.join('\n') + '\n' }),
      runChecked(ip, ['netns', 'exec', inet, this.#tools.sysctl, '-q', '-e', '-w', ...BRIDGE_NF_OFF]),
    ]);

    // Hosts and routers on the internet need routes to LANs that are routed without NAT.
    const openLans = nodes.filter((n) => n.role === 'router' && n.nat === 'none');
    const openRoutes = (self: LabHost): string[] =>
      openLans.filter((r) => r !== self).map((r) => `route add ${r.subnet!} via ${r.address}`);

    const settled = await Promise.allSettled(nodes.map(async (node) => {
      const cmds = ['link set lo up'];
      if (node.role === 'public') {
        cmds.push('link set eth0 up', ...node.addresses.map((a) => `addr add ${a}/${INTERNET_PREFIX_LEN} dev eth0`), ...openRoutes(node));
      } else if (node.role === 'router') {
        cmds.push(`link set ${WAN_IF} up`, `addr add ${node.address}/${INTERNET_PREFIX_LEN} dev ${WAN_IF}`,
          `link add ${LAN_IF} type bridge`, `link set ${LAN_IF} up`, `addr add ${node.addresses[1]}/${LAN_PREFIX_LEN} dev ${LAN_IF}`,
          ...(routerPorts.get(node.name) ?? []).map((port) => `link set ${port} master ${LAN_IF} up`),
          ...openRoutes(node));
      } else {
        const router = this.#nodes.get(node.lan!)!;
        cmds.push('link set eth0 up', `addr add ${node.address}/${LAN_PREFIX_LEN} dev eth0`, `route add default via ${router.addresses[1]}`);
      }
      await Promise.all([
        runChecked(ip, ['-n', node.namespace, '-batch', '-'], { input: cmds.join('\n') + '\n' }),
        node.role === 'router' ? this.#configureRouter(node) : undefined,
      ]);
    }));
    // Wait for every namespace's batch before reporting, so teardown never races a command still running.
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #configureRouter(router: LabHost): Promise<void> {
    const { ip, nft, sysctl } = this.#tools;
    await runChecked(ip, ['netns', 'exec', router.namespace, sysctl, '-q', '-e', '-w', 'net.ipv4.ip_forward=1', ...BRIDGE_NF_OFF]);
    const rules = natRuleset(router.nat!);
    if (rules) await runChecked(ip, ['netns', 'exec', router.namespace, nft, '-f', '-'], { input: rules });
  }

  #namespaces(): string[] {
    return [this.internetNamespace, ...[...this.#nodes.values()].map((n) => n.namespace)];
  }

  async #teardown(): Promise<void> {
    const started = performance.now();
    try {
      await this.#stopChildren();
      await NetLab.#deleteNamespaces(this.#tools, this.#namespaces());
      const left = parseNetnsList((await runChecked(this.#tools.ip, ['netns', 'list'])).stdout).filter((n) => n.startsWith(this.prefix));
      if (left.length > 0) throw new NetLabError('ERR_NETLAB_TEARDOWN', `namespaces left after destroy: ${left.join(', ')}`);
    } finally {
      NetLab.#live.delete(this);
      this.timings.teardownMs = performance.now() - started;
    }
  }

  async #stopChildren(): Promise<void> {
    const running = [...this.#children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(running.map((child) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        if (child.pid) killQuietly(child.pid, 'SIGKILL');
      }, 1000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (child.pid) killQuietly(child.pid, 'SIGTERM');
    })));
  }

  /** Kill any process still inside the namespaces (grandchildren, exec() leftovers), then delete them. */
  static async #deleteNamespaces(tools: Tools, namespaces: string[]): Promise<void> {
    if (namespaces.length === 0) return;
    const existing = new Set(parseNetnsList((await runChecked(tools.ip, ['netns', 'list'])).stdout));
    const present = namespaces.filter((ns) => existing.has(ns));
    const pids = await Promise.all(present.map((ns) => run(tools.ip, ['netns', 'pids', ns])));
    for (const result of pids) {
      for (const pid of result.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        if (pid !== process.pid) killQuietly(pid, 'SIGKILL');
      }
    }
    if (present.length > 0) {
      await runChecked(tools.ip, ['-force', '-batch', '-'], { input: present.map((ns) => `netns del ${ns}\n`).join('') });
    }
  }

  /** Synchronous teardown for process exit and fatal signals: best effort, never throws. */
  #destroySync(): void {
    if (this.#destroyed && !NetLab.#live.has(this)) return;
    for (const child of this.#children) if (child.pid && child.exitCode === null) killQuietly(child.pid, 'SIGKILL');
    const { ip } = this.#tools;
    const existing = new Set(parseNetnsList(runSync(ip, ['netns', 'list'])));
    const present = this.#namespaces().filter((ns) => existing.has(ns));
    for (const ns of present) {
      for (const pid of runSync(ip, ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) {
        if (pid !== process.pid) killQuietly(pid, 'SIGKILL');
      }
    }
    if (present.length > 0) runSync(ip, ['-force', '-batch', '-'], present.map((ns) => `netns del ${ns}\n`).join(''));
    NetLab.#live.delete(this);
  }

  static #register(lab: NetLab): void {
    NetLab.#live.add(lab);
    if (NetLab.#handlersInstalled) return;
    NetLab.#handlersInstalled = true;
    const cleanAll = (): void => {
      for (const live of [...NetLab.#live]) live.#destroySync();
    };
    process.on('exit', cleanAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = (): void => {
        cleanAll();
        process.off(signal, onSignal);
        // If nobody else handles the signal, die of it as we would have without this handler.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      };
      process.on(signal, onSignal);
    }
  }
}
