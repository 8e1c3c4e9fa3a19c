import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { CallManager } from '../../src/call/call-manager.js';
import type { CallManagerOptions, CallSignalling } from '../../src/call/call-manager.js';
import type { CallMedia, CallStreamParams, CallStreamStats } from '../../src/call/media.js';
import { TimeoutError, PartylineError } from '../../src/errors.js';
import type { MediaPath } from '../../src/nat/path/path-service.js';
import type { ConnectivitySession } from '../../src/nat/path/session.js';
import type { Incoming, IncomingHandler, PeerDevice } from '../../src/overlay/route/messenger.js';
import type { SealInput } from '../../src/overlay/route/sealed.js';
import { silentLogger } from '../../src/system/logging.js';

/**
 * Call managers of several phones in one process, wired through an
 * in-memory switchboard instead of sealed messages through supernodes (the
 * route and sealing are tested in test/overlay), with media paths and
 * engines that record what the call layer asks of them. For the call state
 * machine: forking, busy, decline, cancel, no answer, hold, conference.
 */
export class Switchboard {
  readonly phones = new Map<string, Phone>();
  /** Messages in flight (for tests that stop delivery). */
  drop = new Set<string>();
  /** Users that exist but have no device online. */
  readonly offline = new Set<string>();

  add(user: string, deviceId = `${user}-${randomBytes(3).toString('hex')}`, options: Partial<CallManagerOptions> = {}): Phone {
    const phone = new Phone(this, user, deviceId, options);
    this.phones.set(deviceId, phone);
    return phone;
  }

  devicesOf(user: string): Phone[] {
    return [...this.phones.values()].filter((p) => p.user === user && p.online);
  }

  deliver(from: Phone, to: PeerDevice, message: SealInput & { id: string }): void {
    const target = this.phones.get(to.deviceId);
    if (!target || !target.online) throw new PartylineError('ERR_ROUTE_NOT_DELIVERED', `${to.deviceId} is not attached`);
    if (this.drop.has(message.type)) return;
    const incoming: Incoming = {
      from: { user: from.user, deviceId: from.deviceId, noiseKey: Buffer.alloc(32), credential: {} as never },
      to: { user: target.user, deviceId: target.deviceId },
      type: message.type,
      id: message.id,
      re: message.re,
      ts: Date.now(),
      body: JSON.parse(JSON.stringify(message.body)) as unknown,
      reply: from.device,
    };
    setImmediate(() => target.receive(incoming));
  }

  async close(): Promise<void> {
    await Promise.all([...this.phones.values()].map((p) => p.calls.close()));
  }
}

export class Phone implements CallSignalling {
  readonly user: string;
  readonly deviceId: string;
  readonly calls: CallManager;
  online = true;
  readonly media: FakeMedia[] = [];
  #board: Switchboard;
  #handlers = new Map<string, IncomingHandler>();
  #waiting = new Map<string, (m: Incoming) => void>();

  constructor(board: Switchboard, user: string, deviceId: string, options: Partial<CallManagerOptions>) {
    this.#board = board;
    this.user = user;
    this.deviceId = deviceId;
    this.calls = new CallManager({
      messenger: this,
      openPath: (device, session) => this.#openPath(device, session),
      openMedia: async () => {
        const media = new FakeMedia();
        this.media.push(media);
        return media;
      },
      codec: () => ({ sampleRate: 16000, bitrate: 16000, srtpProfile: 'AES_CM_128_HMAC_SHA1_80', dtx: false }),
      capabilities: () => ({ cores: 4, load: 0, publicAddress: false, kbps: 0 }),
      log: silentLogger(),
      ringTimeoutS: () => 30,
      ...options,
    });
  }

  get device(): PeerDevice {
    return { user: this.user, deviceId: this.deviceId, supernode: 'sn:1', addresses: [], noiseKey: Buffer.alloc(32), issued: Date.now() };
  }

  on(type: string, handler: IncomingHandler): void {
    this.#handlers.set(type, handler);
  }

  async resolve(user: string): ReturnType<CallSignalling['resolve']> {
    const devices = this.#board.devicesOf(user).map((p) => p.device);
    const found = devices.length > 0 || this.#board.offline.has(user);
    return { devices, answer: { found, user, online: devices.length > 0, devices: [], records: [], lastSeen: null, source: 'index' } as never };
  }

  async send(to: PeerDevice, message: SealInput): Promise<string> {
    const id = message.id ?? randomBytes(8).toString('hex');
    this.#board.deliver(this, to, { ...message, id });
    return id;
  }

  async request(to: PeerDevice, message: SealInput, timeoutMs = 5_000): Promise<Incoming> {
    const id = message.id ?? randomBytes(8).toString('hex');
    const answer = new Promise<Incoming>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`no answer to ${message.type}`)), timeoutMs);
      this.#waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    await this.send(to, { ...message, id });
    return answer;
  }

  reply(to: Incoming, message: Omit<SealInput, 're'>): Promise<string> {
    return this.send(to.reply, { ...message, re: to.id });
  }

  receive(message: Incoming): void {
    if (message.re) {
      const waiting = this.#waiting.get(message.re);
      if (waiting) {
        this.#waiting.delete(message.re);
        waiting(message);
        return;
      }
    }
    void this.#handlers.get(message.type)?.(message);
  }

  async #openPath(device: PeerDevice, session: string): Promise<MediaPath> {
    const target = this.#board.phones.get(device.deviceId);
    const sink = target?.calls.callPath(session, { user: this.user, deviceId: this.deviceId, noiseKey: Buffer.alloc(32), credential: {} as never });
    if (!target || !sink) throw new PartylineError('ERR_PATH_REFUSED', 'no such call');
    const [mine, theirs] = fakePathPair(session);
    sink(theirs);
    return mine;
  }
}

/** Two ends of a media path: what one sends, the other's session emits as data. */
function fakePathPair(id: string): [MediaPath, MediaPath] {
  const a = new FakeSession();
  const b = new FakeSession();
  a.peer = b;
  b.peer = a;
  const path = (session: FakeSession): MediaPath => ({
    id,
    session: session as unknown as ConnectivitySession,
    local: { udp: true, relayLeg: 'none' },
    remote: { udp: true, relayLeg: 'none' },
    setupMs: () => 1,
    kind: () => (session.closed ? null : 'direct-udp'),
    candidates: () => [],
    close: () => {
      session.closed = true;
      session.selected = undefined;
    },
  });
  return [path(a), path(b)];
}

class FakeSession extends EventEmitter {
  peer: FakeSession | undefined;
  closed = false;
  selected: unknown = { transport: { kind: 'direct-udp' } };
  sent = 0;
  send(packet: Buffer): boolean {
    if (this.closed) return false;
    this.sent++;
    const peer = this.peer;
    if (peer && !peer.closed) setImmediate(() => peer.emit('data', packet, peer.selected));
    return true;
  }
}

/** Records streams, hold and DTMF; counts packets through. */
export class FakeMedia extends EventEmitter implements CallMedia {
  readonly streams = new Map<string, { params: CallStreamParams; send: (packet: Buffer) => void; held: boolean; received: number; dtmf: string[] }>();
  closed = false;
  addStream(id: string, params: CallStreamParams, send: (packet: Buffer) => void): void {
    this.streams.set(id, { params, send, held: false, received: 0, dtmf: [] });
  }
  receive(id: string, packet: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return;
    s.received++;
    if (packet[0] === 0x44) this.emit('dtmf', { streamId: id, digit: packet.subarray(1).toString() });
  }
  setHold(id: string, held: boolean): void {
    const s = this.streams.get(id);
    if (s) s.held = held;
  }
  sendDtmf(id: string, digits: string): void {
    const s = this.streams.get(id);
    for (const d of digits) s?.send(Buffer.concat([Buffer.from([0x44]), Buffer.from(d)]));
  }
  removeStream(id: string): void {
    this.streams.delete(id);
  }
  muted = false;
  volume = 5;
  setMute(muted: boolean): void {
    this.muted = muted;
  }
  setVolume(level: number): void {
    this.volume = level;
  }
  stats(id: string): CallStreamStats | undefined {
    const s = this.streams.get(id);
    if (!s) return undefined;
    return {
      packetsSent: 0, packetsReceived: s.received, packetsLost: 0, jitterMs: 0, rttMs: null, mos: null, lossPct: 0,
      bytesSent: 0, bytesReceived: 0, datagramsSent: 0, datagramsReceived: s.received, jitterBufferMs: 20, fec: false, bitrate: 12000,
      sendBitrate: 0, lastPacketAt: null, srtpRejected: 0, malformed: 0, dtmfSent: 0, dtmfReceived: 0, held: s.held,
    };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
