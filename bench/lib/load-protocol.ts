/**
 * IPC messages between a bench and its load-generator process
 * (bench/lib/load-client.ts, started with child_process.fork).
 */

export interface PrepareCommand {
  type: 'prepare';
  count: number;
  network: string;
  /** The login server's Ed25519 key pair, base64: the load client issues its own credentials with it. */
  loginKey: { publicKey: string; privateKey: string };
}

export interface AttachCommand {
  type: 'attach';
  /** Attach clients until this many are attached (total, not additional). */
  target: number;
  /** Handshakes + attaches in flight at once. */
  parallel: number;
  host: string;
  port: number;
  /** Links per source address: client i connects from address index floor(i / perAddress). */
  perAddress: number;
}

export interface StatsCommand {
  type: 'stats';
}

export interface CloseCommand {
  type: 'close';
}

export type LoadCommand = PrepareCommand | AttachCommand | StatsCommand | CloseCommand;

export interface PreparedReply {
  type: 'prepared';
  count: number;
  ms: number;
}

export interface AttachedReply {
  type: 'attached';
  /** Attached links open now. */
  attached: number;
  /** Attaches completed by this command. */
  added: number;
  failures: number;
  ms: number;
  /** Per attach in this command, ms from TCP connect to the Attach answer. */
  latency: { p50: number; p99: number; max: number };
  /** The keep-alive interval the supernode asked for in its Attach answer. */
  keepAliveS: number;
  errors: Record<string, number>;
}

export interface StatsReply {
  type: 'stats';
  attached: number;
  /** Links that closed after attaching (the supernode dropped them, or the socket failed). */
  closed: number;
  /** Keep-alive pings since the previous stats command. */
  pingsOk: number;
  pingsFailed: number;
  rtt: { p50: number; p99: number; max: number };
  errors: Record<string, number>;
}

export interface ClosedReply {
  type: 'closed';
}

export interface ErrorReply {
  type: 'error';
  message: string;
}

export type LoadReply = PreparedReply | AttachedReply | StatsReply | ClosedReply | ErrorReply;

/** Loopback source address number `index` (0-based): 127.0.0.2 … 127.0.0.251, 127.0.1.2 …; never .0, .1 or .255. */
export function sourceAddress(index: number): string {
  const third = Math.floor(index / 250);
  if (third > 255) throw new RangeError(`source address index ${index}: more than 64,000 loopback addresses`);
  return `127.0.${third}.${2 + (index % 250)}`;
}

export function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}
