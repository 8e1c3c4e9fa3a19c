import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Server, Socket } from 'node:net';
import { z } from 'zod';
import { PartylineError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import type { Logger } from '../../system/logging.js';
import { formatHostPort } from '../../util/host-port.js';
import { defineRequest } from '../../wire/messages.js';
import type { BandwidthMeasurement, ReachbackResult } from './assessment.js';
import { ipOf } from './capabilities.js';

/**
 * Reach-back and bandwidth probe for supernode promotion (DESIGN.md
 * "Supernode promotion"): is a would-be supernode reachable from outside on
 * the port it would serve on, over TCP and over UDP, and how fast can it
 * send and receive?
 *
 * The candidate binds its future supernode port (TCP and UDP) with a
 * `ReachbackResponder` and asks its supernode, over their authenticated
 * link, to `promotion.probe` it. The supernode (`ReachbackProber`) connects
 * back to **the address the link came from** (never to an address the
 * candidate names: a supernode must not become anyone's port scanner) at
 * the given port and sends a random challenge; the candidate proves it is
 * the one that asked by answering HMAC-SHA256(token, challenge) with the
 * token it sent over the encrypted link. Over the same TCP connection the
 * supernode then sends `bytes` bytes (the candidate times its download)
 * and the candidate sends `bytes` back (the supernode times the upload).
 * Rates are timed from the first to the last byte received, so connection
 * set-up does not count. Bounded: at most 1 MiB each way, a deadline on
 * everything, one probe per candidate address a minute, two at a time.
 *
 * Wire (TCP, supernode → candidate): "PLRB" 0x01 challenge(16) bytes(u32 BE);
 * candidate → supernode: proof(16); then `bytes` down, then `bytes` up.
 * UDP: "PLRB" 0x02 challenge(16) → proof(16), up to three tries.
 */

const MAGIC = Buffer.from('PLRB');
const TCP_KIND = 0x01;
const UDP_KIND = 0x02;
const HELLO_LENGTH = MAGIC.length + 1 + 16 + 4;
const PROOF_LENGTH = 16;
export const PROBE_MAX_BYTES = 1024 * 1024;
export const PROBE_DEFAULT_BYTES = 256 * 1024;

export const PromotionProbe = defineRequest(
  'promotion.probe',
  z.object({
    /** The port the candidate would serve on as a supernode (TCP and UDP). */
    port: z.number().int().min(1).max(65535),
    /** 16 random bytes, base64: what the candidate's answers are keyed with. */
    token: z.string().regex(/^[A-Za-z0-9+/]{22}==$/, 'expected 16 bytes in base64'),
    /** Bytes to send each way for the bandwidth measurement. */
    bytes: z.number().int().min(0).max(PROBE_MAX_BYTES),
  }).strict(),
  z.object({
    /** host:port the supernode reached back to. */
    address: z.string().max(300),
    tcp: z.boolean(),
    udp: z.boolean(),
    /** Upload rate the supernode timed (candidate → supernode), kbit/s; null when not measured. */
    upKbps: z.number().min(0).nullable(),
    /** What failed, for the candidate's reasons. */
    detail: z.string().max(300).optional(),
  }).strict(),
);

function proof(token: Buffer, kind: number, challenge: Buffer): Buffer {
  return createHmac('sha256', token).update(Buffer.from([kind])).update(challenge).digest().subarray(0, PROOF_LENGTH);
}

function kbps(bytes: number, ms: number): number {
  return ms <= 0 ? 0 : Math.round((bytes * 8) / ms);
}

// ---- supernode side -----------------------------------------------------------

export interface ReachbackProberOptions {
  log: Logger;
  /**
   * Addresses never probed (default `unprobeable`: loopback, unspecified,
   * link-local, multicast, and this host's own addresses — what a link
   * through a local proxy would show). Tests on loopback pass their own.
   */
  refuse?: (ip: string) => boolean;
  /** ms per step (connect, challenge, each transfer); default 5000. */
  timeoutMs?: number;
  /** Minimum ms between probes of one IP; default 60 s. */
  perAddressIntervalMs?: number;
  /** Probes at once; default 2. */
  concurrency?: number;
  now?: () => number;
}

export class ReachbackProber {
  readonly #options: Required<Omit<ReachbackProberOptions, 'log'>> & { log: Logger };
  readonly #lastByIp = new Map<string, number>();
  #running = 0;

  constructor(options: ReachbackProberOptions) {
    this.#options = { timeoutMs: 5000, perAddressIntervalMs: 60_000, concurrency: 2, now: Date.now, refuse: unprobeable, ...options };
  }

  /** Serve `promotion.probe` on an attached node's link. */
  serveNode(link: Link): void {
    link.handle(PromotionProbe, (body) => this.probe(link.remoteAddress, body));
  }

  async probe(remote: string | undefined, body: { port: number; token: string; bytes: number }): Promise<z.infer<typeof PromotionProbe.response>> {
    const ip = remote === undefined ? undefined : ipOf(remote);
    if (ip === undefined) throw new PartylineError('ERR_PROBE_ADDRESS', 'promotion.probe: the link has no remote address to probe');
    if (this.#options.refuse(ip)) throw new PartylineError('ERR_PROBE_ADDRESS', `promotion.probe: will not probe ${ip} (loopback, local or not a unicast address: the link comes through a proxy?)`);
    const now = this.#options.now();
    const last = this.#lastByIp.get(ip);
    if (last !== undefined && now - last < this.#options.perAddressIntervalMs) {
      throw new PartylineError('ERR_PROBE_RATE', `promotion.probe: ${ip} was probed ${Math.round((now - last) / 1000)} s ago; at most one probe per ${Math.round(this.#options.perAddressIntervalMs / 1000)} s`);
    }
    if (this.#running >= this.#options.concurrency) throw new PartylineError('ERR_PROBE_BUSY', 'promotion.probe: busy with other probes, try later');
    this.#lastByIp.set(ip, now);
    for (const [k, at] of this.#lastByIp) if (now - at >= this.#options.perAddressIntervalMs) this.#lastByIp.delete(k);
    this.#running++;
    const token = Buffer.from(body.token, 'base64');
    const address = formatHostPort({ host: ip, port: body.port });
    try {
      const [tcp, udp] = await Promise.all([this.#tcp(ip, body.port, token, body.bytes), this.#udp(ip, body.port, token)]);
      const detail = [tcp.detail, udp ? undefined : 'no UDP answer'].filter((d) => d !== undefined).join('; ');
      this.#options.log.info({ address, tcp: tcp.ok, udp, upKbps: tcp.upKbps }, 'reach-back probe');
      return { address, tcp: tcp.ok, udp, upKbps: tcp.upKbps, ...(detail ? { detail } : {}) };
    } finally {
      this.#running--;
    }
  }

  #tcp(host: string, port: number, token: Buffer, bytes: number): Promise<{ ok: boolean; upKbps: number | null; detail?: string }> {
    const challenge = randomBytes(16);
    const expected = proof(token, TCP_KIND, challenge);
    const timeoutMs = this.#options.timeoutMs;
    return new Promise((resolve) => {
      let settled = false;
      let proved = false;
      let received = Buffer.alloc(0);
      let upBytes = 0;
      let firstAt = 0;
      let firstLength = 0;
      let sentAt = 0;
      const socket = createConnection({ host, port });
      const finish = (result: { ok: boolean; upKbps: number | null; detail?: string }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      // A slow uplink that does not finish in time is measured on what arrived.
      const partial = (): number | null => (firstAt > 0 && upBytes > firstLength ? kbps(upBytes - firstLength, performance.now() - firstAt) : null);
      const deadline = (): void => {
        if (!proved) finish({ ok: false, upKbps: null, detail: 'no TCP answer' });
        else finish({ ok: true, upKbps: partial(), detail: `transfer not finished within ${timeoutMs * 2} ms (${upBytes} of ${bytes} bytes up)` });
      };
      let timer = setTimeout(deadline, timeoutMs);
      socket.setNoDelay(true);
      // Fixed words, not the socket error: the answer must not tell a requester more than "reached or not".
      socket.on('error', () => finish({ ok: proved, upKbps: partial(), detail: proved ? 'TCP connection broke during the transfer' : 'no TCP connection' }));
      socket.on('connect', () => {
        const hello = Buffer.alloc(HELLO_LENGTH);
        MAGIC.copy(hello, 0);
        hello[4] = TCP_KIND;
        challenge.copy(hello, 5);
        hello.writeUInt32BE(bytes, 21);
        socket.write(hello);
      });
      socket.on('data', (chunk: Buffer) => {
        if (!proved) {
          received = Buffer.concat([received, chunk]);
          if (received.length < PROOF_LENGTH) return;
          if (!timingSafeEqual(received.subarray(0, PROOF_LENGTH), expected)) {
            finish({ ok: false, upKbps: null, detail: 'TCP answer with a wrong proof (another host on that port?)' });
            return;
          }
          proved = true;
          if (bytes === 0) {
            finish({ ok: true, upKbps: null });
            return;
          }
          // Download for the candidate: a deadline of its own.
          clearTimeout(timer);
          timer = setTimeout(deadline, timeoutMs * 2);
          socket.write(Buffer.alloc(bytes));
          sentAt = performance.now();
          chunk = received.subarray(PROOF_LENGTH);
          if (chunk.length === 0) return;
        }
        // Timed from the first chunk's arrival: its own bytes do not count.
        if (firstAt === 0) {
          firstAt = performance.now();
          firstLength = chunk.length;
        }
        upBytes += chunk.length;
        if (upBytes >= bytes) {
          // All in one chunk (a fast link): time it from when the download was handed over instead.
          const up = upBytes > firstLength ? kbps(upBytes - firstLength, performance.now() - firstAt) : kbps(upBytes, performance.now() - sentAt);
          finish({ ok: true, upKbps: up });
        }
      });
    });
  }

  async #udp(host: string, port: number, token: Buffer): Promise<boolean> {
    const challenge = randomBytes(16);
    const expected = proof(token, UDP_KIND, challenge);
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    try {
      return await new Promise<boolean>((resolve) => {
        let tries = 0;
        let timer: NodeJS.Timeout | undefined;
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          resolve(ok);
        };
        socket.on('error', () => done(false));
        socket.on('message', (msg, rinfo) => {
          if (rinfo.port === port && msg.length === PROOF_LENGTH && timingSafeEqual(msg, expected)) done(true);
        });
        const hello = Buffer.concat([MAGIC, Buffer.from([UDP_KIND]), challenge]);
        const send = (): void => {
          if (tries++ >= 3) {
            done(false);
            return;
          }
          socket.send(hello, port, host);
          timer = setTimeout(send, Math.min(1000, this.#options.timeoutMs / 3));
        };
        send();
      });
    } finally {
      socket.close();
    }
  }
}

// ---- candidate side -----------------------------------------------------------

export interface ReachbackResponderOptions {
  host: string;
  port: number;
  token: Buffer;
  log: Logger;
  /** ms for the whole exchange once a prober connects; default 15000. */
  timeoutMs?: number;
}

/**
 * The candidate's side: a TCP listener and a UDP socket on the future
 * supernode port, answering the prober's challenges, for the duration of
 * one probe. `downKbps` is what it timed.
 */
export class ReachbackResponder {
  readonly #options: ReachbackResponderOptions;
  #server: Server | undefined;
  #udp: UdpSocket | undefined;
  #sockets = new Set<Socket>();
  downKbps: number | null = null;

  constructor(options: ReachbackResponderOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const { host, port } = this.#options;
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw new PartylineError('ERR_PROBE_LISTEN', `cannot listen on TCP ${formatHostPort({ host, port })} for the reach-back probe: ${errorMessage(err)}`, { cause: err });
    });
    this.#server = server;
    const udp = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await this.stop();
      throw new PartylineError('ERR_PROBE_LISTEN', `cannot bind UDP ${formatHostPort({ host, port })} for the reach-back probe: ${errorMessage(err)}`, { cause: err });
    });
    udp.on('error', (err) => this.#options.log.debug({ err: errorMessage(err) }, 'reach-back UDP socket error'));
    udp.on('message', (msg, rinfo) => {
      if (msg.length !== MAGIC.length + 1 + 16 || !msg.subarray(0, 4).equals(MAGIC) || msg[4] !== UDP_KIND) return;
      udp.send(proof(this.#options.token, UDP_KIND, msg.subarray(5)), rinfo.port, rinfo.address);
    });
    this.#udp = udp;
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(), this.#options.timeoutMs ?? 15_000);
    socket.on('close', () => {
      clearTimeout(timer);
      this.#sockets.delete(socket);
      // The download did not finish (a slow downlink, the prober's deadline): measured on what arrived.
      if (this.downKbps === null && firstAt > 0 && got > firstLength) this.downKbps = kbps(got - firstLength, performance.now() - firstAt);
    });
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let bytes = -1;
    let got = 0;
    let firstAt = 0;
    let firstLength = 0;
    let provedAt = 0;
    socket.on('data', (chunk: Buffer) => {
      if (bytes < 0) {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < HELLO_LENGTH) return;
        if (!buffered.subarray(0, 4).equals(MAGIC) || buffered[4] !== TCP_KIND) {
          socket.destroy();
          return;
        }
        bytes = Math.min(PROBE_MAX_BYTES, buffered.readUInt32BE(21));
        socket.write(proof(this.#options.token, TCP_KIND, buffered.subarray(5, 21)));
        provedAt = performance.now();
        chunk = buffered.subarray(HELLO_LENGTH);
        if (bytes === 0) return;
        if (chunk.length === 0) return;
      }
      if (got >= bytes) return;
      if (firstAt === 0) {
        firstAt = performance.now();
        firstLength = chunk.length;
      }
      got += chunk.length;
      if (got >= bytes) {
        this.downKbps = got > firstLength ? kbps(got - firstLength, performance.now() - firstAt) : kbps(got, performance.now() - provedAt);
        socket.write(Buffer.alloc(bytes));
      }
    });
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    const udp = this.#udp;
    this.#udp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }
}

/** Run one probe from the candidate's side over its link to a supernode. */
export async function probeThroughSupernode(options: {
  link: Link;
  supernode: string;
  host: string;
  port: number;
  bytes: number;
  log: Logger;
  now?: () => number;
  signal?: AbortSignal;
}): Promise<{ reachback: ReachbackResult; bandwidth: BandwidthMeasurement | null }> {
  const token = randomBytes(16);
  const responder = new ReachbackResponder({ host: options.host, port: options.port, token, log: options.log });
  await responder.start();
  try {
    const answer = await options.link.request(PromotionProbe, { port: options.port, token: token.toString('base64'), bytes: options.bytes }, { timeoutMs: 30_000, ...(options.signal ? { signal: options.signal } : {}) });
    const at = (options.now ?? Date.now)();
    const reachback: ReachbackResult = { address: answer.address, tcp: answer.tcp, udp: answer.udp, by: options.supernode, at };
    const bandwidth = answer.upKbps !== null && responder.downKbps !== null ? { upKbps: answer.upKbps, downKbps: responder.downKbps, with: options.supernode, at } : null;
    options.log.info({ ...reachback, upKbps: answer.upKbps, downKbps: responder.downKbps, detail: answer.detail }, 'reach-back and bandwidth probe');
    return { reachback, bandwidth };
  } finally {
    await responder.stop();
  }
}

/** Addresses a supernode never probes: not a public unicast host elsewhere. */
export function unprobeable(ip: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(ip);
  if (v4) {
    const a = Number(v4[1]);
    const b = Number(v4[2]);
    if (a === 0 || a === 127 || a >= 224 || (a === 169 && b === 254)) return true;
  } else {
    const lower = ip.toLowerCase();
    if (lower === '::' || lower === '::1' || lower.startsWith('fe80:') || lower.startsWith('ff')) return true;
  }
  return ownAddresses().has(ip);
}

function ownAddresses(): Set<string> {
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const info of list ?? []) own.add(info.address);
  return own;
}
