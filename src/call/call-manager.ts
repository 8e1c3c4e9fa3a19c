import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PartylineError, errorMessage } from '../errors.js';
import type { MediaPath } from '../nat/path/path-service.js';
import type { Incoming, Messenger, PeerDevice } from '../overlay/route/messenger.js';
import { ACTION_MAX_AGE_MS } from '../overlay/route/messenger.js';
import { normaliseUserName } from '../login/user-name.js';
import type { Logger } from '../system/logging.js';
import type { CallMedia, CallStreamStats, CodecSettings, LocalMedia } from './media.js';
import { localMedia, streamParams } from './media.js';
import {
  CALL_MESSAGE_TYPES as T,
  callAcceptSchema,
  callAnswerSchema,
  callByeSchema,
  callCancelSchema,
  callHoldSchema,
  callInviteSchema,
  callProgressSchema,
  callRejectSchema,
  conferenceAddResultSchema,
  conferenceAddSchema,
} from './messages.js';
import type { CANCEL_REASONS, Capabilities, CallInvite, MediaOffer } from './messages.js';

/** What `ctl status` shows of a call (the issue's interface; `state` one of these four). */
export type CallStateName = 'dialing' | 'ringing' | 'active' | 'held';
export type CallDirection = 'outgoing' | 'incoming';

/** How a call ended, as kept in the call log. */
export type CallOutcome =
  | 'completed'
  | 'missed'
  | 'no-answer'
  | 'busy'
  | 'declined'
  | 'cancelled'
  | 'answered-elsewhere'
  | 'unreachable'
  | 'failed';

/** A type (not an interface) so that it fits the control API's loosely typed CallStatus. */
export type CallView = {
  id: string;
  state: CallStateName;
  peer: string;
  direction: CallDirection;
  path: string | null;
  codec: string | null;
  rtp: {
    packetsSent: number;
    packetsReceived: number;
    packetsLost: number;
    jitterMs: number;
    /** SRTP + SRTCP: bytes (UDP payloads) and datagrams, both ways. */
    bytesSent: number;
    bytesReceived: number;
    datagramsSent: number;
    datagramsReceived: number;
    /** Packets SRTP refused: forged, tampered or replayed. */
    srtpRejected: number;
    jitterBufferMs: number;
    /** Our Opus encoder adds in-band FEC (the peer reports loss). */
    fec: boolean;
  };
  /** Caller only: ms from `ctl call` to the first device ringing, and to the first media packet from the callee. */
  setup: { ringingMs: number | null; mediaMs: number | null } | null;
  rttMs: number | null;
  mos: number | null;
  /** Who holds: this phone, the other one, or nobody. */
  held: 'local' | 'remote' | 'both' | null;
  /** How signalling reaches the other phone: a direct link, or sealed through the supernodes. */
  signalling: 'direct' | 'supernodes';
  /** Seconds since the call was answered (0 before). */
  durationS: number;
  /** This phone mixes a conference: its legs, one per other party. */
  conference?: { mixer: boolean; parties: Array<{ peer: string; state: CallStateName; path: string | null; mos: number | null }> };
  /** DTMF digits received in this call. */
  dtmfReceived: string;
  startedAt: string;
  answeredAt: string | null;
};

export interface CallLogEntry {
  id: string;
  peer: string;
  direction: CallDirection;
  outcome: CallOutcome;
  reason: string | null;
  startedAt: string;
  durationS: number;
  /** An incoming call nobody here answered. */
  missed: boolean;
}

type LegState = CallStateName | 'answering' | 'ended';

interface InvitedDevice {
  device: PeerDevice;
  status: 'inviting' | 'ringing' | 'busy' | 'declined' | 'unreachable';
}

interface Leg {
  id: string;
  peer: string;
  direction: CallDirection;
  state: LegState;
  local: LocalMedia;
  remote?: MediaOffer;
  remoteCaps?: Capabilities;
  /** The device at the other end: the caller's, or the callee's device that answered. */
  device?: PeerDevice;
  invited: Map<string, InvitedDevice>;
  path?: MediaPath;
  streaming: boolean;
  heldLocal: boolean;
  heldRemote: boolean;
  /** The other side mixes the conference this leg belongs to. */
  remoteMixes: boolean;
  startedAt: number;
  answeredAt?: number;
  timers: NodeJS.Timeout[];
  /** Settles `call()` once the callee rings (or the call fails before). */
  ringing?: { resolve: () => void; reject: (err: Error) => void };
  dtmf: string;
  noPathSince?: number;
  /** performance.now() when `ctl call` came in (before the user was looked up). */
  dialledAt?: number;
  ringingMs?: number;
  mediaMs?: number;
}

/** What calls need of the sealed messenger (src/overlay/route/messenger.ts). */
export type CallSignalling = Pick<Messenger, 'on' | 'send' | 'request' | 'reply' | 'resolve'> & Partial<Pick<Messenger, 'connectDirect' | 'hasDirect'>>;

export interface CallManagerOptions {
  messenger: CallSignalling;
  /** Media paths (src/nat/path/): opened by the caller once a device answers. */
  openPath: (device: PeerDevice, session: string) => Promise<MediaPath>;
  /** A media engine for a call (a worker thread; closed when the call ends). */
  openMedia: () => Promise<CallMedia>;
  codec: () => CodecSettings;
  capabilities: () => Capabilities;
  log: Logger;
  /** Seconds a call rings before it counts as not answered (default 30). */
  ringTimeoutS?: () => number;
  /** Answer incoming calls by themselves after this many ms (the sound-test service). */
  autoAnswerMs?: number;
  /** A call with no working media path for this long ends (default 20 s). */
  mediaLostMs?: number;
  /** Parties in a conference, this phone included (default 6). */
  maxParties?: number;
}

interface CallManagerEvents {
  /** The call (null: none) changed state. */
  state: [CallView | null];
  incoming: [{ id: string; peer: string }];
  ended: [CallLogEntry];
  dtmf: [{ id: string; digit: string }];
}

const INVITE_TIMEOUT_MS = 5_000;
/** How long a call waits for a direct signalling link before inviting through the supernodes. */
const DIRECT_WAIT_MS = 100;
const CALL_LOG_SIZE = 100;

/**
 * Calls on a phone (DESIGN.md "Calls"): one call at a time, which may be a
 * conference this phone mixes (one leg per other party). Signalling is
 * sealed messages through the supernodes (src/overlay/route/); media is the
 * engine's SRTP streams over media paths (src/nat/path/).
 *
 * A call to a user invites every device of the user at once; each answers
 * `ringing` or `busy`. The first device to answer gets the call, the others
 * are cancelled (`answered-elsewhere`). Declining on any device declines the
 * call. No answer within the ring timeout cancels it (`no-answer`; a missed
 * call at the callee).
 */
export class CallManager extends EventEmitter<CallManagerEvents> {
  #options: CallManagerOptions;
  #log: Logger;
  #legs = new Map<string, Leg>();
  #media: Promise<CallMedia> | undefined;
  /** The engine once it runs. */
  #engine: CallMedia | undefined;
  #log_: CallLogEntry[] = [];
  #watch: NodeJS.Timeout | undefined;
  #closed = false;
  #muted = false;
  #volume = 5;

  constructor(options: CallManagerOptions) {
    super();
    this.#options = options;
    this.#log = options.log;
    const m = options.messenger;
    m.on(T.invite, (message) => this.#onInvite(message), { maxAgeMs: ACTION_MAX_AGE_MS });
    m.on(T.answer, (message) => this.#onAnswer(message), { maxAgeMs: ACTION_MAX_AGE_MS });
    m.on(T.cancel, (message) => this.#onCancel(message));
    m.on(T.reject, (message) => this.#onReject(message));
    m.on(T.bye, (message) => this.#onBye(message));
    m.on(T.hold, (message) => this.#onHold(message));
    m.on(T.conferenceAdd, (message) => this.#onConferenceAdd(message), { maxAgeMs: ACTION_MAX_AGE_MS });
    this.#watch = setInterval(() => this.#watchMedia(), 1_000);
    this.#watch.unref();
  }

  /** The call now, as `ctl status` shows it; null when there is none. */
  view(): CallView | null {
    const legs = [...this.#legs.values()].filter((l) => l.state !== 'ended');
    const first = legs[0];
    if (!first) return null;
    const stats = this.#stats(first);
    const view: CallView = {
      id: first.id,
      state: viewState(first),
      peer: first.peer,
      direction: first.direction,
      path: first.path?.kind() ?? null,
      codec: first.remote ? `opus/${first.local.offer.codec.sampleRate}/${Math.round(first.local.offer.codec.bitrate / 1000)}k ${first.local.offer.srtp.profile}` : null,
      rtp: {
        packetsSent: stats?.packetsSent ?? 0,
        packetsReceived: stats?.packetsReceived ?? 0,
        packetsLost: stats?.packetsLost ?? 0,
        jitterMs: round(stats?.jitterMs ?? 0),
        bytesSent: stats?.bytesSent ?? 0,
        bytesReceived: stats?.bytesReceived ?? 0,
        datagramsSent: stats?.datagramsSent ?? 0,
        datagramsReceived: stats?.datagramsReceived ?? 0,
        srtpRejected: stats?.srtpRejected ?? 0,
        jitterBufferMs: round(stats?.jitterBufferMs ?? 0),
        fec: stats?.fec ?? false,
      },
      setup: first.direction === 'outgoing' ? { ringingMs: first.ringingMs ?? null, mediaMs: first.mediaMs ?? null } : null,
      rttMs: stats?.rttMs === null || stats?.rttMs === undefined ? null : round(stats.rttMs),
      mos: stats?.mos === null || stats?.mos === undefined ? null : round(stats.mos),
      signalling: first.device && this.#options.messenger.hasDirect?.(first.device.deviceId) ? 'direct' : 'supernodes',
      durationS: first.answeredAt ? Math.round((Date.now() - first.answeredAt) / 1000) : 0,
      held: first.heldLocal && first.heldRemote ? 'both' : first.heldLocal ? 'local' : first.heldRemote ? 'remote' : null,
      dtmfReceived: first.dtmf,
      startedAt: new Date(first.startedAt).toISOString(),
      answeredAt: first.answeredAt ? new Date(first.answeredAt).toISOString() : null,
    };
    if (legs.length > 1 || first.remoteMixes) {
      view.conference = {
        mixer: legs.length > 1,
        parties: legs.map((l) => ({ peer: l.peer, state: viewState(l), path: l.path?.kind() ?? null, mos: this.#stats(l)?.mos ?? null })),
      };
    }
    return view;
  }

  /** The last calls, newest first. */
  history(): CallLogEntry[] {
    return [...this.#log_].reverse();
  }

  get busy(): boolean {
    return [...this.#legs.values()].some((l) => l.state !== 'ended');
  }

  /**
   * Call a user: invite all of the user's devices. Resolves once one of them
   * rings; throws ERR_NO_SUCH_USER, ERR_USER_OFFLINE, ERR_USER_BUSY,
   * ERR_CALL_DECLINED or ERR_USER_UNREACHABLE otherwise.
   */
  async call(user: string, options: { conference?: boolean } = {}): Promise<CallView> {
    if (this.#closed) throw new PartylineError('ERR_STOPPED', 'the node is stopping');
    if (this.busy && !options.conference) throw new PartylineError('ERR_IN_CALL', 'already in a call: hang up first (or add the user to a conference)');
    const dialledAt = performance.now();
    const peer = normaliseUserName(user);
    const { devices, answer } = await this.#options.messenger.resolve(peer);
    if (!answer.found) throw new PartylineError('ERR_NO_SUCH_USER', `no such user: ${user}`);
    if (devices.length === 0) throw new PartylineError('ERR_USER_OFFLINE', `${peer} is offline`);
    if (this.busy && !options.conference) throw new PartylineError('ERR_IN_CALL', 'already in a call');
    // Signalling goes over a direct link where one comes up at once (same LAN, public addresses), else through the supernodes.
    const connect = this.#options.messenger.connectDirect?.bind(this.#options.messenger);
    if (connect) await Promise.all(devices.map((d) => connect(d, DIRECT_WAIT_MS)));
    const leg = this.#newLeg(randomBytes(12).toString('base64url'), peer, 'outgoing', 'dialing');
    leg.dialledAt = dialledAt;
    for (const device of devices) leg.invited.set(device.deviceId, { device, status: 'inviting' });
    const rang = new Promise<void>((resolve, reject) => {
      leg.ringing = { resolve, reject };
    });
    this.#prepareMedia();
    this.#emitState();
    this.#log.info({ call: leg.id, peer, devices: devices.length }, 'calling');
    const invite: CallInvite = {
      call: leg.id,
      media: leg.local.offer,
      caps: this.#options.capabilities(),
      ...(options.conference ? { conference: { parties: this.#parties() } } : {}),
    };
    for (const invited of leg.invited.values()) this.#invite(leg, invited, invite);
    leg.timers.push(
      setTimeout(() => {
        if (leg.state !== 'dialing' && leg.state !== 'ringing') return;
        this.#cancelDevices(leg, 'no-answer');
        this.#end(leg, 'no-answer', `no answer within ${this.#ringTimeoutS()} s`);
      }, this.#ringTimeoutS() * 1000),
    );
    await rang;
    return this.view()!;
  }

  /** Answer the ringing incoming call. */
  async answer(): Promise<CallView> {
    const leg = [...this.#legs.values()].find((l) => l.direction === 'incoming' && l.state === 'ringing');
    if (!leg || !leg.device) throw new PartylineError('ERR_NO_CALL', 'no incoming call is ringing');
    leg.state = 'answering';
    this.#prepareMedia();
    let accepted: boolean;
    let reason: string | undefined;
    try {
      const reply = await this.#options.messenger.request(leg.device, { type: T.answer, body: { call: leg.id, media: leg.local.offer, caps: this.#options.capabilities() } }, INVITE_TIMEOUT_MS);
      const parsed = callAcceptSchema.safeParse(reply.body);
      accepted = parsed.success && parsed.data.call === leg.id && parsed.data.accepted;
      reason = parsed.success ? parsed.data.reason : 'malformed answer';
    } catch (err) {
      this.#end(leg, 'failed', `the caller did not take the answer: ${errorMessage(err)}`);
      throw new PartylineError('ERR_CALL_GONE', `the call is gone: ${errorMessage(err)}`);
    }
    if (leg.state !== 'answering') throw new PartylineError('ERR_CALL_GONE', 'the call ended while answering');
    if (!accepted) {
      this.#end(leg, reason === 'answered-elsewhere' ? 'answered-elsewhere' : 'cancelled', reason ?? 'the caller refused the answer');
      throw new PartylineError('ERR_CALL_GONE', reason === 'answered-elsewhere' ? 'answered on another device' : `the call is over${reason ? `: ${reason}` : ''}`);
    }
    leg.state = 'active';
    leg.answeredAt = Date.now();
    this.#log.info({ call: leg.id, peer: leg.peer }, 'call answered');
    this.#emitState();
    return this.view()!;
  }

  /** Hang up: end an active call, cancel one that is dialling, or decline one that rings here. */
  async hangup(): Promise<{ ended: string | null }> {
    const legs = [...this.#legs.values()].filter((l) => l.state !== 'ended');
    if (legs.length === 0) throw new PartylineError('ERR_NO_CALL', 'no call to hang up');
    await Promise.all(legs.map((leg) => this.#hangupLeg(leg)));
    return { ended: legs[0]!.id };
  }

  async hold(held: boolean): Promise<CallView> {
    const legs = [...this.#legs.values()].filter((l) => l.state === 'active' || l.state === 'held');
    if (legs.length === 0) throw new PartylineError('ERR_NO_CALL', held ? 'no active call to hold' : 'no call on hold');
    if (!held && !legs.some((l) => l.heldLocal)) throw new PartylineError('ERR_NOT_HELD', 'the call is not on hold here (the other side holds it)');
    const media = await this.#media;
    for (const leg of legs) {
      leg.heldLocal = held;
      this.#applyHold(leg, media);
      this.#send(leg, T.hold, { call: leg.id, held });
    }
    this.#emitState();
    return this.view()!;
  }

  /** Send DTMF digits (RFC 4733 telephone events) on the call. */
  async dtmf(digits: string): Promise<{ sent: string }> {
    const legs = [...this.#legs.values()].filter((l) => l.streaming);
    if (legs.length === 0) throw new PartylineError('ERR_NO_CALL', 'no call with media to send digits on');
    const media = await this.#media;
    for (const leg of legs) media?.sendDtmf(leg.id, digits);
    return { sent: digits };
  }

  /** Mute the microphone for this call (and calls after it until unmuted). */
  setMute(muted: boolean): void {
    this.#muted = muted;
    this.#engine?.setMute(muted);
  }

  /** Handset volume 0–10 (5 = as received), kept for later calls. */
  setVolume(level: number): void {
    if (!Number.isInteger(level) || level < 0 || level > 10) throw new PartylineError('ERR_VOLUME', `volume ${level}: expected 0..10`);
    this.#volume = level;
    this.#engine?.setVolume(level);
  }

  /**
   * Add a user to the call, making it a conference. The most capable party
   * mixes: when the other party of a two-party call is more capable, or
   * mixes a conference already, it is asked to add the user.
   */
  async conferenceAdd(user: string): Promise<CallView> {
    const legs = [...this.#legs.values()].filter((l) => l.state === 'active' || l.state === 'held');
    if (legs.length === 0) throw new PartylineError('ERR_NO_CALL', 'a conference starts from an active call');
    const peer = normaliseUserName(user);
    if (legs.some((l) => l.peer === peer)) throw new PartylineError('ERR_IN_CONFERENCE', `${peer} is already in the call`);
    const only = legs.length === 1 ? legs[0]! : undefined;
    const delegate = only && only.device && (only.remoteMixes || (only.remoteCaps && mixerScore(only.remoteCaps) > DELEGATE_MARGIN * mixerScore(this.#options.capabilities())));
    if (only && delegate) {
      const reply = await this.#options.messenger.request(only.device!, { type: T.conferenceAdd, body: { call: only.id, user: peer } }, 15_000);
      const parsed = conferenceAddResultSchema.safeParse(reply.body);
      if (!parsed.success || !parsed.data.ok) throw new PartylineError('ERR_CONFERENCE', `${only.peer} could not add ${peer}: ${parsed.success ? parsed.data.reason ?? 'refused' : 'malformed answer'}`);
      only.remoteMixes = true;
      this.#emitState();
      return this.view()!;
    }
    if (legs.length + 1 >= (this.#options.maxParties ?? 6)) throw new PartylineError('ERR_CONFERENCE_FULL', `a conference has at most ${this.#options.maxParties ?? 6} parties`);
    await this.call(peer, { conference: true });
    return this.view()!;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watch);
    const legs = [...this.#legs.values()].filter((l) => l.state !== 'ended');
    await Promise.all(legs.map((leg) => this.#hangupLeg(leg).catch(() => undefined)));
    await this.#closeMedia();
  }

  // ---- outgoing ---------------------------------------------------------

  #invite(leg: Leg, invited: InvitedDevice, invite: CallInvite): void {
    this.#options.messenger.request(invited.device, { type: T.invite, body: invite }, INVITE_TIMEOUT_MS).then(
      (reply) => {
        const parsed = callProgressSchema.safeParse(reply.body);
        if (!parsed.success || parsed.data.call !== leg.id) invited.status = 'unreachable';
        else invited.status = parsed.data.status;
        this.#progress(leg);
      },
      (err: unknown) => {
        this.#log.info({ call: leg.id, device: invited.device.deviceId, err: errorMessage(err) }, 'invite not delivered');
        invited.status = 'unreachable';
        this.#progress(leg);
      },
    );
  }

  /** A device answered the invite (or failed to): ringing, or the call fails when no device can ring. */
  #progress(leg: Leg): void {
    if (leg.state !== 'dialing' && leg.state !== 'ringing') return;
    const all = [...leg.invited.values()];
    if (all.some((d) => d.status === 'declined')) {
      this.#cancelDevices(leg, 'declined-elsewhere');
      this.#fail(leg, 'declined', 'ERR_CALL_DECLINED', `${leg.peer} declined the call`);
      return;
    }
    if (all.some((d) => d.status === 'ringing')) {
      if (leg.state === 'dialing') {
        leg.state = 'ringing';
        if (leg.dialledAt !== undefined) leg.ringingMs = Math.round(performance.now() - leg.dialledAt);
        this.#log.info({ call: leg.id, peer: leg.peer, ms: leg.ringingMs }, 'ringing');
        leg.ringing?.resolve();
        this.#emitState();
      }
      return;
    }
    if (all.some((d) => d.status === 'inviting')) return;
    // Nobody rings (any more).
    if (all.some((d) => d.status === 'busy')) this.#fail(leg, 'busy', 'ERR_USER_BUSY', `${leg.peer} is busy`);
    else this.#fail(leg, 'unreachable', 'ERR_USER_UNREACHABLE', `${leg.peer} cannot be reached now`);
  }

  #fail(leg: Leg, outcome: CallOutcome, code: string, message: string): void {
    leg.ringing?.reject(new PartylineError(code, message));
    this.#end(leg, outcome, message);
  }

  async #onAnswer(message: Incoming): Promise<void> {
    const parsed = callAnswerSchema.safeParse(message.body);
    if (!parsed.success) return;
    const answer = parsed.data;
    const leg = this.#legs.get(answer.call);
    const invited = leg?.invited.get(message.from.deviceId);
    const refuse = (reason: string): Promise<string> => this.#options.messenger.reply(message, { type: T.accept, body: { call: answer.call, accepted: false, reason } });
    if (!leg || !invited || invited.device.user !== message.from.user) {
      await refuse('no such call');
      return;
    }
    if (leg.state !== 'dialing' && leg.state !== 'ringing') {
      await refuse(leg.device ? 'answered-elsewhere' : 'the call is over');
      return;
    }
    leg.state = 'active';
    leg.answeredAt = Date.now();
    leg.device = invited.device;
    leg.remote = answer.media;
    leg.remoteCaps = answer.caps;
    leg.ringing?.resolve();
    this.#log.info({ call: leg.id, peer: leg.peer, device: invited.device.deviceId }, 'call answered');
    await this.#options.messenger.reply(message, { type: T.accept, body: { call: leg.id, accepted: true } });
    this.#cancelDevices(leg, 'answered-elsewhere', invited.device.deviceId);
    this.#emitState();
    try {
      const path = await this.#options.openPath(invited.device, leg.id);
      if ((leg.state as LegState) === 'ended') {
        path.close();
        return;
      }
      await this.#attach(leg, path);
    } catch (err) {
      this.#log.warn({ call: leg.id, err: errorMessage(err) }, 'no media path for the call');
      this.#send(leg, T.bye, { call: leg.id, reason: 'no media path' });
      this.#end(leg, 'failed', `no media path: ${errorMessage(err)}`);
    }
  }

  #cancelDevices(leg: Leg, reason: (typeof CANCEL_REASONS)[number], except?: string): void {
    for (const invited of leg.invited.values()) {
      if (invited.device.deviceId === except || invited.status === 'unreachable' || invited.status === 'busy') continue;
      this.#options.messenger.send(invited.device, { type: T.cancel, body: { call: leg.id, reason } }).catch((err: unknown) => {
        this.#log.debug({ call: leg.id, device: invited.device.deviceId, err: errorMessage(err) }, 'cancel not delivered');
      });
    }
  }

  async #onReject(message: Incoming): Promise<void> {
    const parsed = callRejectSchema.safeParse(message.body);
    if (!parsed.success) return;
    const leg = this.#legs.get(parsed.data.call);
    const invited = leg?.invited.get(message.from.deviceId);
    if (!leg || !invited || (leg.state !== 'dialing' && leg.state !== 'ringing')) return;
    invited.status = parsed.data.reason === 'busy' ? 'busy' : 'declined';
    this.#progress(leg);
  }

  // ---- incoming ---------------------------------------------------------

  async #onInvite(message: Incoming): Promise<void> {
    const parsed = callInviteSchema.safeParse(message.body);
    if (!parsed.success) {
      this.#log.info({ from: message.from.user }, 'malformed call invite ignored');
      return;
    }
    const invite = parsed.data;
    const progress = (status: 'ringing' | 'busy' | 'declined', reason?: string): Promise<string> =>
      this.#options.messenger.reply(message, { type: T.progress, body: { call: invite.call, status, ...(reason ? { reason } : {}) } });
    if (this.#legs.has(invite.call)) return; // a copy
    if (this.#closed || this.busy) {
      this.#log.info({ from: message.from.user, call: invite.call }, 'incoming call while busy');
      this.#remember({ id: invite.call, peer: message.from.user, direction: 'incoming', outcome: 'busy', reason: 'busy here', startedAt: new Date().toISOString(), durationS: 0, missed: true });
      await progress('busy');
      return;
    }
    const leg = this.#newLeg(invite.call, message.from.user, 'incoming', 'ringing', invite.media.srtp.profile);
    leg.device = message.reply;
    leg.remote = invite.media;
    leg.remoteCaps = invite.caps;
    leg.remoteMixes = invite.conference !== undefined;
    // The caller's cancel may be lost: stop ringing a little after its ring timeout anyway.
    leg.timers.push(
      setTimeout(() => {
        if (leg.state === 'ringing') this.#end(leg, 'missed', 'the caller gave up');
      }, (this.#ringTimeoutS() + 5) * 1000),
    );
    this.#log.info({ call: leg.id, from: leg.peer }, 'incoming call');
    // Start the media worker while it rings: answering then has audio at once.
    this.#prepareMedia();
    await progress('ringing');
    this.emit('incoming', { id: leg.id, peer: leg.peer });
    this.#emitState();
    if (this.#options.autoAnswerMs !== undefined) {
      leg.timers.push(
        setTimeout(() => {
          if (leg.state === 'ringing') this.answer().catch((err: unknown) => this.#log.info({ call: leg.id, err: errorMessage(err) }, 'auto-answer failed'));
        }, this.#options.autoAnswerMs),
      );
    }
  }

  async #onCancel(message: Incoming): Promise<void> {
    const parsed = callCancelSchema.safeParse(message.body);
    if (!parsed.success) return;
    const leg = this.#legs.get(parsed.data.call);
    if (!leg || leg.direction !== 'incoming' || leg.device?.deviceId !== message.from.deviceId) return;
    if (leg.state !== 'ringing' && leg.state !== 'answering') return;
    const reason = parsed.data.reason;
    const outcome: CallOutcome = reason === 'answered-elsewhere' ? 'answered-elsewhere' : reason === 'declined-elsewhere' ? 'declined' : 'missed';
    this.#end(leg, outcome, reason);
  }

  /** The caller's path offer for a call this device answered: accept it only from that device. */
  callPath(session: string, from: Incoming['from']): ((path: MediaPath) => void) | undefined {
    const leg = this.#legs.get(session);
    if (!leg || leg.direction !== 'incoming' || leg.device?.deviceId !== from.deviceId) return undefined;
    if (leg.state !== 'answering' && leg.state !== 'active' && leg.state !== 'held') return undefined;
    if (leg.path) return undefined;
    return (path) => {
      this.#attach(leg, path).catch((err: unknown) => {
        this.#log.warn({ call: leg.id, err: errorMessage(err) }, 'cannot start media');
        this.#send(leg, T.bye, { call: leg.id, reason: 'media failed' });
        this.#end(leg, 'failed', errorMessage(err));
      });
    };
  }

  // ---- both ---------------------------------------------------------------

  async #onBye(message: Incoming): Promise<void> {
    const parsed = callByeSchema.safeParse(message.body);
    if (!parsed.success) return;
    const leg = this.#legs.get(parsed.data.call);
    if (!leg || leg.device?.deviceId !== message.from.deviceId) return;
    this.#end(leg, leg.answeredAt ? 'completed' : 'cancelled', parsed.data.reason ?? 'the other side hung up');
  }

  async #onHold(message: Incoming): Promise<void> {
    const parsed = callHoldSchema.safeParse(message.body);
    if (!parsed.success) return;
    const leg = this.#legs.get(parsed.data.call);
    if (!leg || leg.device?.deviceId !== message.from.deviceId || (leg.state !== 'active' && leg.state !== 'held')) return;
    leg.heldRemote = parsed.data.held;
    this.#applyHold(leg, await this.#media);
    this.#emitState();
  }

  async #onConferenceAdd(message: Incoming): Promise<void> {
    const parsed = conferenceAddSchema.safeParse(message.body);
    if (!parsed.success) return;
    const leg = this.#legs.get(parsed.data.call);
    const reply = (ok: boolean, reason?: string): Promise<string> =>
      this.#options.messenger.reply(message, { type: T.conferenceAddResult, body: { call: parsed.data.call, ok, ...(reason ? { reason } : {}) } });
    if (!leg || leg.device?.deviceId !== message.from.deviceId || (leg.state !== 'active' && leg.state !== 'held')) {
      await reply(false, 'no such call');
      return;
    }
    try {
      const active = [...this.#legs.values()].filter((l) => l.state === 'active' || l.state === 'held');
      if (active.length + 1 >= (this.#options.maxParties ?? 6)) throw new PartylineError('ERR_CONFERENCE_FULL', 'the conference is full');
      await this.call(parsed.data.user, { conference: true });
      await reply(true);
    } catch (err) {
      await reply(false, errorMessage(err));
    }
  }

  async #hangupLeg(leg: Leg): Promise<void> {
    if (leg.state === 'ended') return;
    if (leg.direction === 'outgoing' && (leg.state === 'dialing' || leg.state === 'ringing')) {
      this.#cancelDevices(leg, 'cancelled');
      leg.ringing?.reject(new PartylineError('ERR_CALL_CANCELLED', 'call cancelled'));
      this.#end(leg, 'cancelled', 'cancelled by the caller');
      return;
    }
    if (leg.direction === 'incoming' && leg.state === 'ringing') {
      this.#send(leg, T.reject, { call: leg.id, reason: 'declined' });
      this.#end(leg, 'declined', 'declined here');
      return;
    }
    this.#send(leg, T.bye, { call: leg.id, reason: 'hung up' });
    this.#end(leg, 'completed', 'hung up here');
  }

  /** Media for a leg once it has a path and the peer's parameters: an engine stream fed from the path. */
  async #attach(leg: Leg, path: MediaPath): Promise<void> {
    leg.path = path;
    if (!leg.remote) throw new PartylineError('ERR_CALL_MEDIA', 'no media parameters from the peer');
    const params = streamParams(leg.local, leg.remote, this.#options.codec().dtx);
    const media = await this.#media;
    if (!media || leg.state === 'ended') {
      path.close();
      return;
    }
    media.addStream(leg.id, params, (packet) => {
      path.session.send(packet);
    });
    path.session.on('data', (packet) => {
      if (leg.mediaMs === undefined && leg.dialledAt !== undefined) {
        leg.mediaMs = Math.round(performance.now() - leg.dialledAt);
        this.#log.info({ call: leg.id, ms: leg.mediaMs }, 'first media packet');
      }
      media.receive(leg.id, packet);
    });
    path.session.on('selected', (selected, previous) => {
      this.#log.info({ call: leg.id, path: selected.transport.kind, previous: previous?.transport.kind ?? null }, 'call media path');
      this.#emitState();
    });
    leg.streaming = true;
    this.#applyHold(leg, media);
    this.#log.info({ call: leg.id, peer: leg.peer, path: path.kind() }, 'media started');
    this.#emitState();
  }

  #applyHold(leg: Leg, media: CallMedia | undefined): void {
    if (leg.state === 'active' || leg.state === 'held') leg.state = leg.heldLocal || leg.heldRemote ? 'held' : 'active';
    if (leg.streaming) media?.setHold(leg.id, leg.heldLocal || leg.heldRemote);
  }

  /** A call whose media path has been gone too long ends; one that never got media ends too. */
  #watchMedia(): void {
    const limit = this.#options.mediaLostMs ?? 20_000;
    const now = Date.now();
    for (const leg of this.#legs.values()) {
      if (leg.state !== 'active' && leg.state !== 'held') continue;
      const working = leg.path?.session.selected !== undefined;
      if (working) {
        delete leg.noPathSince;
        continue;
      }
      leg.noPathSince ??= now;
      if (now - leg.noPathSince > limit) {
        this.#log.warn({ call: leg.id, peer: leg.peer }, 'call media lost');
        this.#send(leg, T.bye, { call: leg.id, reason: 'media lost' });
        this.#end(leg, 'failed', 'media lost');
      }
    }
  }

  #end(leg: Leg, outcome: CallOutcome, reason: string): void {
    if (leg.state === 'ended') return;
    const wasAnswered = leg.answeredAt !== undefined;
    leg.state = 'ended';
    for (const t of leg.timers) clearTimeout(t);
    leg.ringing?.reject(new PartylineError('ERR_CALL_ENDED', reason));
    leg.path?.close();
    if (leg.streaming) this.#media?.then((m) => m.removeStream(leg.id)).catch(() => undefined);
    this.#legs.delete(leg.id);
    const entry: CallLogEntry = {
      id: leg.id,
      peer: leg.peer,
      direction: leg.direction,
      outcome,
      reason,
      startedAt: new Date(leg.startedAt).toISOString(),
      durationS: wasAnswered ? Math.round((Date.now() - leg.answeredAt!) / 1000) : 0,
      missed: leg.direction === 'incoming' && outcome === 'missed',
    };
    this.#remember(entry);
    this.#log.info({ call: leg.id, peer: leg.peer, outcome, reason, durationS: entry.durationS }, 'call ended');
    if (!this.busy) this.#closeMedia().catch(() => undefined);
    this.emit('ended', entry);
    this.#emitState();
  }

  #remember(entry: CallLogEntry): void {
    this.#log_.push(entry);
    if (this.#log_.length > CALL_LOG_SIZE) this.#log_.shift();
  }

  #newLeg(id: string, peer: string, direction: CallDirection, state: LegState, profile?: CodecSettings['srtpProfile']): Leg {
    const codec = this.#options.codec();
    const leg: Leg = {
      id,
      peer,
      direction,
      state,
      local: localMedia(profile ? { ...codec, srtpProfile: profile } : codec),
      invited: new Map(),
      streaming: false,
      heldLocal: false,
      heldRemote: false,
      remoteMixes: false,
      startedAt: Date.now(),
      timers: [],
      dtmf: '',
    };
    this.#legs.set(id, leg);
    return leg;
  }

  /** Start the media engine (a worker) while signalling goes on. */
  #prepareMedia(): void {
    if (this.#media) return;
    const media = this.#options.openMedia();
    this.#media = media;
    media.then(
      (m) => {
        if (this.#media === media) this.#engine = m;
        if (this.#muted) m.setMute(true);
        if (this.#volume !== 5) m.setVolume(this.#volume);
        m.on('dtmf', (event) => {
          const leg = this.#legs.get(event.streamId);
          if (!leg) return;
          leg.dtmf = (leg.dtmf + event.digit).slice(-64);
          this.emit('dtmf', { id: leg.id, digit: event.digit });
          this.#log.info({ call: leg.id, digit: event.digit }, 'DTMF received');
        });
      },
      (err: unknown) => {
        this.#log.error({ err: errorMessage(err) }, 'cannot start the media engine');
        if (this.#media === media) this.#media = undefined;
        for (const leg of [...this.#legs.values()]) {
          if (leg.state === 'ended') continue;
          if (leg.direction === 'outgoing' && (leg.state === 'dialing' || leg.state === 'ringing')) this.#cancelDevices(leg, 'cancelled');
          else this.#send(leg, leg.state === 'ringing' ? T.reject : T.bye, leg.state === 'ringing' ? { call: leg.id, reason: 'declined' } : { call: leg.id, reason: 'media engine failed' });
          this.#end(leg, 'failed', `media engine: ${errorMessage(err)}`);
        }
      },
    );
  }

  async #closeMedia(): Promise<void> {
    const media = this.#media;
    this.#media = undefined;
    this.#engine = undefined;
    if (!media) return;
    const m = await media.catch(() => undefined);
    await m?.close().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'closing the media engine failed'));
  }

  #stats(leg: Leg): CallStreamStats | undefined {
    return leg.streaming ? this.#engine?.stats(leg.id) : undefined;
  }

  #send(leg: Leg, type: string, body: unknown): void {
    if (!leg.device) return;
    this.#options.messenger.send(leg.device, { type, body }).catch((err: unknown) => {
      this.#log.info({ call: leg.id, type, err: errorMessage(err) }, 'call message not delivered');
    });
  }

  #parties(): string[] {
    return [...this.#legs.values()].filter((l) => l.state !== 'ended').map((l) => l.peer);
  }

  #ringTimeoutS(): number {
    return this.#options.ringTimeoutS?.() ?? 30;
  }

  #emitState(): void {
    this.emit('state', this.view());
  }
}

function viewState(leg: Leg): CallStateName {
  if (leg.state === 'answering') return 'ringing';
  if (leg.state === 'ended') return 'active';
  return leg.state;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * The other party mixes only when clearly better: its figures were sent at
 * call set-up and ours are read now (a load average that moved in between
 * must not decide it), and asking it costs a round trip.
 */
export const DELEGATE_MARGIN = 1.25;

/** How good a conference mixer a party is: free CPU, doubled for a public address, plus upstream bandwidth. */
export function mixerScore(caps: Capabilities): number {
  const freeCores = Math.max(0.1, caps.cores - Math.min(caps.load, caps.cores));
  return freeCores * (caps.publicAddress ? 2 : 1) * (1 + Math.min(caps.kbps, 10_000) / 1_000);
}
