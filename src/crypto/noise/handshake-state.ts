import { timingSafeEqual } from 'node:crypto';

import { NoiseError } from '../../errors.js';
import type { CipherState } from './cipher-state.js';
import { DH_LEN, MAX_NOISE_MESSAGE, TAG_LEN } from './constants.js';
import { checkKeyLength, checkKeyPair, dh, generateKeyPair } from './dh.js';
import type { KeyPair } from './dh.js';
import { lookupPattern, protocolName } from './patterns.js';
import type { HandshakePattern, PatternDefinition, Token } from './patterns.js';
import { SymmetricState } from './symmetric-state.js';

/**
 * HandshakeState (Noise section 5.3): runs one side of a handshake pattern
 * over message buffers. Pure: no sockets, no timers; the caller moves the
 * bytes and frames them.
 *
 * Failure rules:
 * - Calls out of turn, after completion or after a failure: ERR_NOISE_STATE.
 *   These, and ERR_NOISE_SHORT / ERR_NOISE_TOO_LONG, are detected before any
 *   state changes, so the handshake is still usable afterwards.
 * - A failure while processing a message (ERR_NOISE_DECRYPT, ERR_NOISE_BAD_KEY)
 *   leaves the hash and keys half-updated, so the handshake is dead from then
 *   on: every later call throws ERR_NOISE_STATE. Drop the connection.
 */

export interface HandshakeOptions {
  pattern: HandshakePattern;
  initiator: boolean;
  /** Bytes both sides must agree on (e.g. a protocol label); mixed into the handshake hash. */
  prologue?: Buffer;
  /** Our static key pair; required by every pattern that sends or pre-shares it (XX, IK, ...). */
  staticKeyPair?: KeyPair;
  /**
   * The peer's static public key. Required where the pattern says it is known
   * in advance (IK/NK/XK/... initiator, KN/KK/KX responder, N/K/X initiator).
   * Where the pattern transmits it instead (XX, IK responder ...), it pins the
   * expected key: a different key from the peer fails with ERR_NOISE_BAD_KEY.
   */
  remoteStaticKey?: Buffer;
  /** Fixed ephemeral key pair: for test vectors only, never in production. */
  ephemeralKeyPair?: KeyPair;
}

/** Transport cipher states, oriented for this side: `send` encrypts, `receive` decrypts. */
export interface TransportCipherStates {
  send: CipherState;
  receive: CipherState;
}

type NoiseCode = `ERR_NOISE_${string}`;

export class HandshakeState {
  readonly #pattern: PatternDefinition;
  readonly #initiator: boolean;
  readonly #symmetric: SymmetricState;
  readonly #protocolName: string;
  readonly #s: KeyPair | undefined;
  readonly #fixedE: KeyPair | undefined;
  readonly #pinnedRs: Buffer | undefined;
  #e: KeyPair | undefined;
  #rs: Buffer | undefined;
  #re: Buffer | undefined;
  #index = 0;
  #failed = false;
  #splitDone = false;

  constructor(opts: HandshakeOptions) {
    const pattern = lookupPattern(String(opts.pattern));
    if (pattern === undefined) {
      throw new NoiseError('ERR_NOISE_PATTERN', `handshake pattern ${JSON.stringify(opts.pattern)} is not supported`);
    }
    if (typeof opts.initiator !== 'boolean') {
      throw new NoiseError('ERR_NOISE_BAD_INPUT', `initiator: expected a boolean, got ${typeof opts.initiator}`);
    }
    const prologue = opts.prologue ?? Buffer.alloc(0);
    checkBuffer(prologue, 'prologue');
    this.#pattern = pattern;
    this.#initiator = opts.initiator;
    this.#protocolName = protocolName(pattern.name);
    const role = opts.initiator ? 'initiator' : 'responder';
    const where = `${pattern.name} ${role}`;

    const ourPre = opts.initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage;
    const theirPre = opts.initiator ? pattern.responderPreMessage : pattern.initiatorPreMessage;
    const ourStaticUsed = ourPre.includes('s') || this.#ourMessages().some((tokens) => tokens.includes('s'));
    const theirStaticSent = this.#theirMessages().some((tokens) => tokens.includes('s'));

    if (ourStaticUsed) {
      if (opts.staticKeyPair === undefined) throw new NoiseError('ERR_NOISE_BAD_KEY', `${where}: staticKeyPair is required`);
      this.#s = checkKeyPair(opts.staticKeyPair, 'static key pair');
    }
    this.#fixedE = opts.ephemeralKeyPair === undefined ? undefined : checkKeyPair(opts.ephemeralKeyPair, 'ephemeral key pair');

    if (theirPre.includes('s')) {
      if (opts.remoteStaticKey === undefined) {
        throw new NoiseError('ERR_NOISE_BAD_KEY', `${where}: remoteStaticKey is required (the pattern needs the peer's static key in advance)`);
      }
      checkKeyLength(opts.remoteStaticKey, 'remote static key');
      this.#rs = Buffer.from(opts.remoteStaticKey);
    } else if (opts.remoteStaticKey !== undefined) {
      if (!theirStaticSent) throw new NoiseError('ERR_NOISE_BAD_KEY', `${where}: the peer has no static key in this pattern`);
      checkKeyLength(opts.remoteStaticKey, 'remote static key');
      this.#pinnedRs = Buffer.from(opts.remoteStaticKey);
    }

    this.#symmetric = new SymmetricState(this.#protocolName);
    this.#symmetric.mixHash(prologue);
    // Pre-messages, the initiator's first (section 7.1); only `s` occurs in them.
    const initiatorStatic = opts.initiator ? this.#s?.publicKey : this.#rs;
    const responderStatic = opts.initiator ? this.#rs : this.#s?.publicKey;
    if (pattern.initiatorPreMessage.includes('s')) this.#symmetric.mixHash(required(initiatorStatic, 'initiator static key'));
    if (pattern.responderPreMessage.includes('s')) this.#symmetric.mixHash(required(responderStatic, 'responder static key'));
  }

  /** e.g. "Noise_XX_25519_ChaChaPoly_SHA256". */
  get protocolName(): string {
    return this.#protocolName;
  }

  /** True once every handshake message has been written or read; split() is then allowed. */
  get isComplete(): boolean {
    return this.#index >= this.#pattern.messages.length;
  }

  /** True when writeMessage is the next legal call. */
  get isMyTurn(): boolean {
    return !this.#failed && !this.isComplete && this.#writerIsInitiator() === this.#initiator;
  }

  /** The peer's static public key, once known (in advance or received). */
  get remoteStaticKey(): Buffer | undefined {
    return this.#rs === undefined ? undefined : Buffer.from(this.#rs);
  }

  /** h: the channel-binding handshake hash; final once the handshake is complete. */
  get handshakeHash(): Buffer {
    return this.#symmetric.handshakeHash;
  }

  /** WriteMessage(payload): the next handshake message to send. */
  writeMessage(payload: Buffer = Buffer.alloc(0)): Buffer {
    this.#checkTurn(true, 'writeMessage');
    checkBuffer(payload, 'payload');
    const tokens = this.#currentTokens();
    const length = this.#messageLength(tokens, payload.length);
    if (length > MAX_NOISE_MESSAGE) {
      throw new NoiseError('ERR_NOISE_TOO_LONG', `${this.#label()}: message would be ${length} bytes, at most ${MAX_NOISE_MESSAGE}`);
    }
    return this.#guard(() => {
      const parts: Buffer[] = [];
      for (const token of tokens) {
        if (token === 'e') {
          this.#e = this.#fixedE ?? generateKeyPair();
          parts.push(this.#e.publicKey);
          this.#symmetric.mixHash(this.#e.publicKey);
        } else if (token === 's') {
          parts.push(this.#symmetric.encryptAndHash(required(this.#s, 'local static key').publicKey));
        } else {
          this.#mixDh(token);
        }
      }
      parts.push(this.#symmetric.encryptAndHash(payload));
      this.#index += 1;
      return Buffer.concat(parts);
    });
  }

  /** ReadMessage(message): processes the peer's handshake message and returns its decrypted payload. */
  readMessage(message: Buffer): Buffer {
    this.#checkTurn(false, 'readMessage');
    checkBuffer(message, 'message');
    if (message.length > MAX_NOISE_MESSAGE) {
      throw new NoiseError('ERR_NOISE_TOO_LONG', `${this.#label()}: ${message.length} bytes, at most ${MAX_NOISE_MESSAGE}`);
    }
    const tokens = this.#currentTokens();
    const minimum = this.#messageLength(tokens, 0);
    if (message.length < minimum) {
      throw new NoiseError('ERR_NOISE_SHORT', `${this.#label()}: ${message.length} bytes, expected at least ${minimum}`);
    }
    return this.#guard(() => {
      let offset = 0;
      const take = (length: number): Buffer => {
        const part = message.subarray(offset, offset + length);
        offset += length;
        return part;
      };
      for (const token of tokens) {
        if (token === 'e') {
          this.#re = Buffer.from(take(DH_LEN));
          this.#symmetric.mixHash(this.#re);
        } else if (token === 's') {
          const sealed = take(DH_LEN + (this.#symmetric.hasKey() ? TAG_LEN : 0));
          this.#rs = this.#symmetric.decryptAndHash(sealed);
          if (this.#pinnedRs !== undefined && !timingSafeEqual(this.#rs, this.#pinnedRs)) {
            throw new NoiseError('ERR_NOISE_BAD_KEY', 'peer static key differs from the expected remoteStaticKey');
          }
        } else {
          this.#mixDh(token);
        }
      }
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset));
      this.#index += 1;
      return payload;
    });
  }

  /**
   * Split(): the transport cipher states, already oriented (the initiator
   * sends with c1, the responder with c2). Allowed once, after completion.
   * One-way patterns (N, K, X): only initiator-to-responder traffic is
   * allowed; the responder must never use `send`.
   */
  split(): TransportCipherStates {
    if (this.#failed || !this.isComplete || this.#splitDone) {
      const why = this.#failed ? 'the handshake failed' : this.#splitDone ? 'split() was already called' : 'the handshake is not complete';
      throw new NoiseError('ERR_NOISE_STATE', `split: ${why}`);
    }
    this.#splitDone = true;
    this.#e = undefined;
    const [c1, c2] = this.#symmetric.split();
    return this.#initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }

  #mixDh(token: Exclude<Token, 'e' | 's'>): void {
    const e = (): KeyPair => required(this.#e, 'local ephemeral key');
    const s = (): KeyPair => required(this.#s, 'local static key');
    const re = (): Buffer => required(this.#re, 'remote ephemeral key');
    const rs = (): Buffer => required(this.#rs, 'remote static key');
    let shared: Buffer;
    switch (token) {
      case 'ee': shared = dh(e(), re()); break;
      case 'es': shared = this.#initiator ? dh(e(), rs()) : dh(s(), re()); break;
      case 'se': shared = this.#initiator ? dh(s(), re()) : dh(e(), rs()); break;
      case 'ss': shared = dh(s(), rs()); break;
    }
    this.#symmetric.mixKey(shared);
  }

  /** Bytes the tokens take, plus the payload (and its tag once a key is set). */
  #messageLength(tokens: readonly Token[], payloadLength: number): number {
    let hasKey = this.#symmetric.hasKey();
    let length = 0;
    for (const token of tokens) {
      if (token === 'e') length += DH_LEN;
      else if (token === 's') length += DH_LEN + (hasKey ? TAG_LEN : 0);
      else hasKey = true;
    }
    return length + payloadLength + (hasKey ? TAG_LEN : 0);
  }

  #checkTurn(writing: boolean, call: string): void {
    let why: string | undefined;
    if (this.#failed) why = 'the handshake failed earlier';
    else if (this.isComplete) why = 'the handshake is already complete';
    else if ((this.#writerIsInitiator() === this.#initiator) !== writing) {
      why = writing ? 'it is the peer\'s turn to send' : 'it is our turn to send';
    }
    if (why !== undefined) throw new NoiseError('ERR_NOISE_STATE', `${call}: ${why}`);
  }

  /** Run a state-changing step; any failure poisons the handshake. */
  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (err) {
      this.#failed = true;
      this.#e = undefined;
      if (err instanceof NoiseError) {
        throw new NoiseError(err.code as NoiseCode, `${this.#label()}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  #label(): string {
    const arrow = this.#writerIsInitiator() ? '->' : '<-';
    return `${this.#protocolName} message ${this.#index} (${arrow} ${this.#currentTokens().join(', ')})`;
  }

  #writerIsInitiator(): boolean {
    return this.#index % 2 === 0;
  }

  #currentTokens(): readonly Token[] {
    return this.#pattern.messages[this.#index] ?? [];
  }

  #ourMessages(): (readonly Token[])[] {
    return this.#pattern.messages.filter((_, i) => (i % 2 === 0) === this.#initiator);
  }

  #theirMessages(): (readonly Token[])[] {
    return this.#pattern.messages.filter((_, i) => (i % 2 === 0) !== this.#initiator);
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new NoiseError('ERR_NOISE_STATE', `${what} is missing`);
  return value;
}

function checkBuffer(value: unknown, what: string): asserts value is Buffer {
  if (!Buffer.isBuffer(value)) throw new NoiseError('ERR_NOISE_BAD_INPUT', `${what}: expected a Buffer, got ${typeof value}`);
}
