import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/** A TCP socket, or any byte stream (a tunnel through a supernode). */
export type ByteStream = Duplex & { remoteAddress?: string | undefined; remotePort?: number | undefined; localPort?: number | undefined };
import { AbortedError, NoiseError, PartylineError, TimeoutError } from '../errors.js';
import { FrameDecoder, encodeFrame } from '../wire/frame.js';
import { unpooled } from '../util/unpooled.js';
import { HandshakeState, MAX_NOISE_MESSAGE } from './noise/index.js';
import type { CipherState, KeyPair } from './noise/index.js';

/** The patterns Partyline links use: XX when the peer's key is unknown, IK when it is. */
export type ChannelPattern = 'XX' | 'IK';

const TAG_LENGTH = 16;
/** Largest plaintext one transport message can carry. */
export const MAX_PLAINTEXT = MAX_NOISE_MESSAGE - TAG_LENGTH;
/** Messages per direction between two rekeys (Noise section 11.3); far below nonce exhaustion. */
export const DEFAULT_REKEY_INTERVAL = 1 << 20;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** A peer that lets this much pile up unread is dropped: its queue would otherwise grow without bound. */
export const MAX_QUEUED_BYTES = 1024 * 1024;

export interface SecureChannelOptions {
  initiator: boolean;
  /**
   * `XX` when the peer's key is unknown, `IK` when it is. Initiators default
   * to XX; a responder without a pattern accepts both.
   */
  pattern?: ChannelPattern;
  staticKeyPair: KeyPair;
  /** Required for an IK initiator; for XX, when set, the peer must present this key. */
  remoteStaticKey?: Buffer;
  /** Bound into the handshake hash: both sides must agree (protocol and network name). */
  prologue?: Buffer;
  /** This side's handshake payload (sent encrypted). */
  payload?: Buffer;
  /** Checks the peer's payload; throw to refuse the peer. May return a value kept as `peer`. */
  verifyPayload?: (payload: Buffer, remoteStaticKey: Buffer) => unknown;
  handshakeTimeoutMs?: number;
  rekeyInterval?: number;
  signal?: AbortSignal;
}

interface SecureChannelEvents {
  message: [Buffer];
  close: [Error | undefined];
}

/** Which handshake message (0-based) carries each side's payload: the first one sent encrypted. */
const PAYLOAD_MESSAGE: Record<ChannelPattern, { initiator: number; responder: number }> = {
  XX: { initiator: 2, responder: 1 },
  IK: { initiator: 0, responder: 1 },
};

/**
 * A Noise session over a TCP socket: the handshake, then 2-byte
 * length-prefixed transport messages (DESIGN.md "Channels"). A frame that
 * fails to decrypt or is malformed closes this channel only, with a typed
 * error passed to `close` listeners.
 */
export class SecureChannel extends EventEmitter<SecureChannelEvents> {
  readonly remoteStaticKey: Buffer;
  readonly remotePayload: Buffer;
  readonly handshakeHash: Buffer;
  /** What `verifyPayload` returned for the peer. */
  readonly peer: unknown;
  #socket: ByteStream;
  #send: CipherState;
  #receive: CipherState;
  #decoder = new FrameDecoder(TAG_LENGTH);
  #rekeyInterval: number;
  #sent = 0;
  #received = 0;
  #closed = false;
  #started = false;
  #leftover: Buffer[];

  private constructor(socket: ByteStream, state: HandshakeDone, rekeyInterval: number) {
    super();
    this.#socket = socket;
    this.#send = state.send;
    this.#receive = state.receive;
    // These live as long as the link: keep them out of Node's shared buffer pool.
    this.remoteStaticKey = unpooled(state.remoteStaticKey);
    this.remotePayload = unpooled(state.remotePayload);
    this.handshakeHash = unpooled(state.handshakeHash);
    this.peer = state.peer;
    this.#rekeyInterval = rekeyInterval;
    this.#leftover = state.leftover;
    // Until start(), incoming bytes wait in the socket: nothing is emitted before someone listens.
    socket.pause();
    socket.on('error', this.#onError);
    socket.on('close', this.#onSocketClose);
  }

  /** Begin delivering `message` events (call once listeners are attached). Idempotent. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const leftover = this.#leftover;
    this.#leftover = [];
    for (const chunk of leftover) this.#onData(chunk);
    this.#socket.on('data', this.#onData);
    this.#socket.resume();
  }

  /** Run the handshake on a connected socket and return the established channel. */
  static async establish(socket: ByteStream, options: SecureChannelOptions): Promise<SecureChannel> {
    const done = await runHandshake(socket, options);
    const channel = new SecureChannel(socket, done, options.rekeyInterval ?? DEFAULT_REKEY_INTERVAL);
    return channel;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  /** Bytes waiting in the socket's buffer (backpressure indicator). */
  get writableLength(): number {
    return this.#socket.writableLength;
  }

  send(plaintext: Uint8Array): void {
    if (this.#closed) throw new NoiseError('ERR_NOISE_CLOSED', 'secure channel: send after close');
    if (plaintext.length > MAX_PLAINTEXT) {
      throw new NoiseError('ERR_NOISE_TOO_LONG', `secure channel: message length ${plaintext.length}, expected at most ${MAX_PLAINTEXT}`);
    }
    if (this.#socket.writableLength > MAX_QUEUED_BYTES) {
      const err = new NoiseError('ERR_NOISE_BACKPRESSURE', `secure channel: peer is not reading (${this.#socket.writableLength} bytes queued)`);
      this.close(err);
      throw err;
    }
    const ciphertext = this.#send.encryptWithAd(Buffer.alloc(0), Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length));
    if (++this.#sent % this.#rekeyInterval === 0) this.#send.rekey();
    this.#socket.write(encodeFrame(ciphertext));
  }

  /** Close the channel; `error` (if any) is reported to `close` listeners. Idempotent. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.off('data', this.#onData);
    if (error) this.#socket.destroy();
    else this.#socket.end();
    this.emit('close', error);
  }

  #onData = (chunk: Buffer): void => {
    if (this.#closed) return;
    try {
      for (const frame of this.#decoder.push(chunk)) {
        const plaintext = this.#receive.decryptWithAd(Buffer.alloc(0), frame);
        if (++this.#received % this.#rekeyInterval === 0) this.#receive.rekey();
        this.emit('message', plaintext);
        if (this.#closed) return;
      }
    } catch (err) {
      this.close(err instanceof PartylineError ? err : new NoiseError('ERR_NOISE_TRANSPORT', 'secure channel: transport failure', { cause: err }));
    }
  };

  #onError = (err: Error): void => {
    this.close(new PartylineError('ERR_SOCKET', `socket error: ${err.message}`, { cause: err }));
  };

  #onSocketClose = (): void => {
    this.close();
  };
}

interface HandshakeDone {
  send: CipherState;
  receive: CipherState;
  remoteStaticKey: Buffer;
  remotePayload: Buffer;
  handshakeHash: Buffer;
  peer: unknown;
  leftover: Buffer[];
}

/** Longest handshake message accepted: two keys, two tags and a payload of at most 4 KiB. */
export const MAX_HANDSHAKE_MESSAGE = 32 + 48 + 16 + 4096 + 256;

/** XX's first message is the bare ephemeral key; IK's carries the static key and payload too. */
const XX_FIRST_MESSAGE_LENGTH = 32;

function runHandshake(socket: ByteStream, options: SecureChannelOptions): Promise<HandshakeDone> {
  // A responder accepts either pattern, told apart by the first message's length.
  const auto = !options.initiator && options.pattern === undefined;
  let pattern: ChannelPattern = options.pattern ?? 'XX';
  const makeState = (): HandshakeState =>
    new HandshakeState({
      pattern,
      initiator: options.initiator,
      prologue: options.prologue ?? Buffer.alloc(0),
      staticKeyPair: options.staticKeyPair,
      ...(options.remoteStaticKey && pattern === 'IK' && options.initiator ? { remoteStaticKey: options.remoteStaticKey } : {}),
    });
  let state = makeState();
  // A handshake message is keys, tags and a small payload: anything longer is not a Partyline peer.
  const decoder = new FrameDecoder(32, MAX_HANDSHAKE_MESSAGE);
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let index = 0;
  let remotePayload: Buffer = Buffer.alloc(0);
  let peer: unknown;

  return new Promise<HandshakeDone>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new TimeoutError(`noise handshake did not finish within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => fail(new AbortedError('noise handshake aborted'));
    const onError = (err: Error): void => fail(new PartylineError('ERR_SOCKET', `socket error during handshake: ${err.message}`, { cause: err }));
    const onClose = (): void => fail(new NoiseError('ERR_NOISE_HANDSHAKE_CLOSED', 'peer closed the connection during the noise handshake'));

    const finishIfComplete = (rest: Buffer[]): boolean => {
      if (!state.isComplete) return false;
      cleanup();
      socket.pause();
      const remoteStaticKey = state.remoteStaticKey;
      if (!remoteStaticKey) {
        fail(new NoiseError('ERR_NOISE_STATE', 'handshake finished without a remote static key'));
        return true;
      }
      const { send, receive } = state.split();
      resolve({ send, receive, remoteStaticKey, remotePayload, handshakeHash: state.handshakeHash, peer, leftover: rest });
      return true;
    };

    const writeTurns = (): void => {
      while (!state.isComplete && state.isMyTurn) {
        const myPayloadAt = PAYLOAD_MESSAGE[pattern][options.initiator ? 'initiator' : 'responder'];
        const payload = index === myPayloadAt ? options.payload ?? Buffer.alloc(0) : Buffer.alloc(0);
        socket.write(encodeFrame(state.writeMessage(payload)));
        index++;
      }
    };

    const onData = (chunk: Buffer): void => {
      try {
        const frames = decoder.push(chunk);
        for (let i = 0; i < frames.length; i++) {
          if (auto && index === 0) {
            pattern = frames[i]!.length === XX_FIRST_MESSAGE_LENGTH ? 'XX' : 'IK';
            state = makeState();
          }
          const payload = state.readMessage(frames[i]!);
          index++;
          if (payload.length > 0) remotePayload = payload;
          checkPeer();
          writeTurns();
          if (state.isComplete) {
            // Frames after the last handshake message are transport messages: hand them on re-framed.
            const rest = frames.slice(i + 1).map((f) => encodeFrame(f));
            const tail = decoder.takeRemainder();
            if (tail) rest.push(tail);
            finishIfComplete(rest);
            return;
          }
        }
      } catch (err) {
        fail(err instanceof PartylineError ? err : new NoiseError('ERR_NOISE_HANDSHAKE', 'noise handshake failed', { cause: err }));
      }
    };

    let peerChecked = false;
    const checkPeer = (): void => {
      const rs = state.remoteStaticKey;
      if (peerChecked || !rs) return;
      // The peer's static key is known once its payload-carrying message is in.
      const peerPayloadAt = PAYLOAD_MESSAGE[pattern][options.initiator ? 'responder' : 'initiator'];
      if (index <= peerPayloadAt) return;
      peerChecked = true;
      if (options.remoteStaticKey && !rs.equals(options.remoteStaticKey)) {
        throw new NoiseError('ERR_NOISE_PEER_KEY', 'peer presented a different static key than expected');
      }
      if (options.verifyPayload) peer = options.verifyPayload(remotePayload, rs);
    };

    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      writeTurns();
    } catch (err) {
      fail(err as Error);
    }
  });
}
