import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { AbortedError } from '../errors.js';
import { classifyNatResults, sameVerdict } from './classify.js';
import type { NatProbeResults, NatVerdict, ProbeOutcome } from './classify.js';
import { addressFamily, canonicalIp, isUnspecified, sameIp } from './stun/address.js';
import type { TransportAddress } from './stun/address.js';
import { DEFAULT_RTO_MS, StunClient } from './stun/client.js';
import type { BindingOptions, BindingResult } from './stun/client.js';
import { StunErrorResponseError } from './stun/errors.js';

export const DEFAULT_CLASSIFY_TIMEOUT_MS = 500;

export interface ClassifyNatOptions {
  /**
   * The socket whose NAT mapping is classified (e.g. the phone's media
   * socket). Default: a fresh socket on `bindAddress`, closed afterwards —
   * unless `client` is given.
   */
  socket?: Socket;
  /**
   * A client the socket's owner feeds (shared socket). Default: one
   * listening on `socket` for the duration. Without `socket`,
   * `localAddresses` must then carry ports.
   */
  client?: StunClient;
  /** Where the fresh socket binds when `socket` is not given (default `0.0.0.0`, any port). */
  bindAddress?: string;
  /** `[A, B?]`: A is asked for the change-request tests, B (another supernode, another IP) serves the mapping test. */
  servers: readonly TransportAddress[];
  /**
   * The socket's own addresses, to tell "no NAT": IPs (the socket's port is
   * added) or IP and port. Default: the socket's bound address, or every
   * interface address when it is bound to a wildcard.
   */
  localAddresses?: ReadonlyArray<string | TransportAddress>;
  /** Per test (default 500 ms); a cone NAT's filtering tests are lost and take this long. */
  timeoutMs?: number;
  /** First retransmission timeout (default 100 ms, doubling). */
  rtoMs?: number;
  signal?: AbortSignal;
  now?: () => number;
  log?: Logger;
}

export interface NatClassification extends NatVerdict {
  durationMs: number;
  /** The test outcomes the verdict came from. */
  results: NatProbeResults;
}

/** The tests `classifyNat` runs; B's and A's alternate-IP mapping tests are combined into `otherIp`. */
export type ProbeSlot = 'primary' | 'changeIpAndPort' | 'changePort' | 'otherIpB' | 'otherIpA' | 'otherPort';
export type SlotState = ProbeOutcome | 'pending' | undefined;

/** Every outcome a pending test could still have, for deciding early. */
const CANDIDATES: Readonly<Record<Exclude<ProbeSlot, 'primary'>, ReadonlyArray<'same' | 'other' | ProbeOutcome>>> = {
  changeIpAndPort: ['same', { status: 'no-response' }, { status: 'unsupported' }],
  changePort: ['same', { status: 'no-response' }, { status: 'unsupported' }],
  otherIpB: ['same', 'other', { status: 'no-response' }, { status: 'unsupported' }],
  otherIpA: ['same', 'other', { status: 'no-response' }, { status: 'unsupported' }],
  otherPort: ['same', 'other', { status: 'no-response' }, { status: 'unsupported' }],
};

/** The other-IP evidence from B and from A's alternate IP: a different mapping outweighs an equal one, which outweighs silence. */
function combineOtherIp(mapped: TransportAddress | undefined, outcomes: readonly (ProbeOutcome | undefined)[]): ProbeOutcome | undefined {
  const answers = outcomes.filter((o): o is { status: 'ok'; mapped: TransportAddress } => o?.status === 'ok');
  const differing = answers.find((o) => mapped === undefined || !(sameIp(o.mapped.address, mapped.address) && o.mapped.port === mapped.port));
  return differing ?? answers[0] ?? outcomes.find((o) => o?.status === 'no-response') ?? outcomes.find((o) => o !== undefined);
}

function toResults(local: readonly TransportAddress[], slots: Readonly<Record<ProbeSlot, ProbeOutcome | undefined>>): NatProbeResults {
  const primary = slots.primary ?? { status: 'no-response' };
  const mapped = primary.status === 'ok' ? primary.mapped : undefined;
  const results: NatProbeResults = { localAddresses: local, primary };
  if (slots.changeIpAndPort) results.changeIpAndPort = slots.changeIpAndPort;
  if (slots.changePort) results.changePort = slots.changePort;
  const otherIp = combineOtherIp(mapped, [slots.otherIpB, slots.otherIpA]);
  if (otherIp) results.otherIp = otherIp;
  if (slots.otherPort) results.otherPort = slots.otherPort;
  return results;
}

/**
 * True when no outcome of the tests still pending can change the verdict,
 * so they need not be waited for. Tries every combination (at most 4^5).
 */
export function verdictSettled(local: readonly TransportAddress[], state: Readonly<Record<ProbeSlot, SlotState>>): boolean {
  const primary = state.primary;
  if (primary === 'pending' || primary?.status !== 'ok') return false;
  const other: TransportAddress = { address: primary.mapped.address, port: primary.mapped.port === 1 ? 2 : primary.mapped.port - 1 };
  const pending = (Object.keys(CANDIDATES) as Array<keyof typeof CANDIDATES>).filter((slot) => state[slot] === 'pending');
  let first: NatVerdict | undefined;
  const visit = (i: number, slots: Record<ProbeSlot, ProbeOutcome | undefined>): boolean => {
    if (i === pending.length) {
      const verdict = classifyNatResults(toResults(local, slots));
      first ??= verdict;
      return sameVerdict(first, verdict);
    }
    const slot = pending[i]!;
    return CANDIDATES[slot].every((c) => {
      const outcome: ProbeOutcome = c === 'same' ? { status: 'ok', mapped: primary.mapped } : c === 'other' ? { status: 'ok', mapped: other } : c;
      return visit(i + 1, { ...slots, [slot]: outcome });
    });
  };
  const known = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v === 'pending' ? undefined : v])) as Record<ProbeSlot, ProbeOutcome | undefined>;
  return visit(0, known);
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/**
 * Classify the NAT in front of `socket` (DESIGN.md, joining step 4). All
 * tests go out at once from the one socket:
 *
 * - test I: Binding to A; its OTHER-ADDRESS tells which alternates A has;
 * - filtering: A with CHANGE-REQUEST change-IP+port, and change-port;
 * - mapping: Binding to B (another supernode: another IP), and — only once
 *   the matching filtering test has settled, since sending there would open
 *   the NAT's filter for the answer it tests — to A's alternate IP and port.
 *
 * It returns as soon as the pending tests can no longer change the verdict:
 * about one round trip for an open host or a full cone, `timeoutMs` when a
 * filtering test must be waited out. "Change IP" needs A to have two
 * addresses; a supernode with one public IP answers 420, and the filtering
 * verdict says what could not be told apart (a future overlay message can
 * have B answer for A: see `StunResponder.answerOnBehalf`).
 */
export async function classifyNat(options: ClassifyNatOptions): Promise<NatClassification> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const [serverA, serverB] = options.servers;
  if (serverA === undefined) throw new RangeError('classifyNat: at least one STUN server (A) is needed');
  if (options.signal?.aborted) throw new AbortedError('NAT classification aborted');

  const ownSocket = options.socket === undefined && options.client === undefined;
  const socket = options.socket ?? (ownSocket ? await bindSocket(options.bindAddress ?? '0.0.0.0') : undefined);
  const local = localTransportAddresses(socket, options.localAddresses);
  const client = options.client ?? StunClient.forSocket(socket!, { log: options.log });
  const abort = new AbortController();
  let onOuterAbort: (() => void) | undefined;
  // Retransmit as often as the doubling RTO allows before each test's deadline.
  const base: BindingOptions = { timeoutMs: options.timeoutMs ?? DEFAULT_CLASSIFY_TIMEOUT_MS, rtoMs: options.rtoMs ?? DEFAULT_RTO_MS, retransmits: 16, signal: abort.signal };

  const state: Record<ProbeSlot, SlotState> = {
    primary: 'pending', changeIpAndPort: 'pending', changePort: 'pending', otherIpB: serverB ? 'pending' : undefined, otherIpA: 'pending', otherPort: 'pending',
  };
  let otherAddress: TransportAddress | undefined;
  /** Set once the verdict is settled: late answers no longer change the outcomes it came from. */
  let finished = false;

  try {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        maybeStartMappingTests();
        if (Object.values(state).every((s) => s !== 'pending') || verdictSettled(local, state)) {
          finished = true;
          resolve();
        }
      };
      const run = (slot: ProbeSlot, server: TransportAddress, opts: BindingOptions, accept: (r: BindingResult) => boolean): void => {
        client.binding(server, { ...base, ...opts }).then(
          (r) => {
            if (finished) return;
            state[slot] = accept(r) ? { status: 'ok', mapped: r.mapped } : { status: 'unsupported' };
            if (slot === 'primary') onPrimary(r);
            check();
          },
          (err: unknown) => {
            if (finished || abort.signal.aborted) return;
            state[slot] = err instanceof StunErrorResponseError ? { status: 'unsupported' } : { status: 'no-response' };
            if (slot === 'primary') onPrimary(undefined);
            check();
          },
        );
      };
      const onPrimary = (r: BindingResult | undefined): void => {
        otherAddress = r?.otherAddress;
        if (otherAddress === undefined || sameIp(otherAddress.address, serverA.address)) state.otherIpA = undefined;
        // With B there is a mapping test towards another address already. The one towards A's other port
        // would follow A's change-port answer from that very port, whose unsolicited arrival leaves a
        // conntrack entry on Linux-style NATs that forces a new mapping: a cone NAT would look symmetric.
        if (otherAddress === undefined || otherAddress.port === serverA.port || serverB !== undefined) state.otherPort = undefined;
      };
      // Sending to A's alternates opens the NAT's filter for them: wait until the answer that would pass that filter is settled.
      // The same holds for B: with supernodes of one address each, A delegates change-IP answers to a peer, often B.
      let startedIpA = false;
      let startedPort = false;
      let startedB = false;
      const maybeStartMappingTests = (): void => {
        if (serverB && !startedB && state.otherIpB === 'pending' && state.changeIpAndPort !== 'pending') {
          startedB = true;
          run('otherIpB', serverB, {}, () => true);
        }
        if (otherAddress === undefined) return;
        if (!startedIpA && state.otherIpA === 'pending' && state.changeIpAndPort !== 'pending') {
          startedIpA = true;
          run('otherIpA', { address: otherAddress.address, port: serverA.port }, {}, () => true);
        }
        if (!startedPort && state.otherPort === 'pending' && state.changePort !== 'pending') {
          startedPort = true;
          run('otherPort', { address: serverA.address, port: otherAddress.port }, {}, () => true);
        }
      };
      onOuterAbort = () => {
        abort.abort();
        reject(new AbortedError('NAT classification aborted'));
      };
      options.signal?.addEventListener('abort', onOuterAbort, { once: true });
      run('primary', serverA, {}, () => true);
      run('changeIpAndPort', serverA, { changeIp: true, changePort: true }, (r) => !sameIp(r.source.address, serverA.address));
      run('changePort', serverA, { changePort: true }, (r) => sameIp(r.source.address, serverA.address) && r.source.port !== serverA.port);
    });
  } finally {
    abort.abort();
    if (onOuterAbort) options.signal?.removeEventListener('abort', onOuterAbort);
    if (options.client === undefined) client.close();
    if (ownSocket) await new Promise<void>((resolve) => socket!.close(() => resolve()));
  }

  const settled = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v === 'pending' ? undefined : v])) as Record<ProbeSlot, ProbeOutcome | undefined>;
  const results = toResults(local, settled);
  const verdict = classifyNatResults(results);
  const durationMs = now() - started;
  options.log?.info({ type: verdict.type, mapping: verdict.mapping, filtering: verdict.filtering, publicAddress: verdict.publicAddress, durationMs }, 'nat classified');
  return { ...verdict, durationMs, results };
}

function localTransportAddresses(socket: Socket | undefined, given: ReadonlyArray<string | TransportAddress> | undefined): TransportAddress[] {
  const bound = socket?.address();
  const list = given ?? (bound === undefined ? [] : isUnspecified(bound.address) ? interfaceAddresses() : [bound.address]);
  return list.map((entry) => {
    if (typeof entry !== 'string') return { address: canonicalIp(entry.address) ?? entry.address, port: entry.port };
    if (bound === undefined) throw new RangeError(`classifyNat: local address ${entry} needs a port when no socket is given`);
    return { address: canonicalIp(entry) ?? entry, port: bound.port };
  });
}

function bindSocket(address: string): Promise<Socket> {
  const socket = createSocket({ type: addressFamily(address) === 'IPv6' ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
