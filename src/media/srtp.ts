/**
 * SRTP and SRTCP (RFC 3711) with AES_CM_128_HMAC_SHA1_80 / _32 (RFC 4568
 * §6.2) and the AEAD profiles AEAD_AES_128_GCM / AEAD_AES_256_GCM (RFC 7714).
 *
 * - Key derivation: the AES-CM PRF of RFC 3711 §4.3 (with AES-256 as RFC
 *   6188 defines it), key derivation rate 0, labels 0–5; RFC 7714 keeps this
 *   PRF for the GCM profiles. Their 96-bit master salt is right-padded with
 *   zeros to the PRF's 112 bits, as libSRTP does (its GCM reference packets
 *   are among the test vectors).
 * - Packet index: the sender's rollover counter counts sequence-number wraps;
 *   the receiver guesses each index from its highest authenticated one
 *   (RFC 3711 §3.3.1, Appendix A) and updates it only after authentication.
 * - Replay protection (§3.3.2): a sliding window per SSRC (128 packets by
 *   default, at least 64) for SRTP and for SRTCP; the sender refuses to reuse
 *   an index, which would reuse keystream.
 * - SRTCP (§3.4): a 31-bit index per SSRC with the E bit; encrypted by default.
 * - No MKI, no key derivation rate other than 0, no RFC 6904 header-extension
 *   encryption.
 *
 * One `SrtpContext` protects one direction: the sender's master key is not the
 * receiver's. Key material never leaves the object: it is absent from error
 * messages, `util.inspect` and `JSON.stringify` (STYLE.md 12).
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { SrtpError } from './errors.js';
import { rtpHeaderLength } from './rtp.js';

export type SrtpProfile = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32' | 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM';

export interface SrtpProfileParameters {
  masterKeyLength: number;
  masterSaltLength: number;
  /** Session salt length: 14 (AES-CM IV salt) or 12 (GCM IV salt). */
  sessionSaltLength: number;
  /** HMAC-SHA1 session authentication key length (0 for AEAD). */
  authKeyLength: number;
  /** Tag appended to SRTP packets. */
  srtpTagLength: number;
  /** Tag appended to SRTCP packets (80 bits even for _32, RFC 4568 §6.2.1). */
  srtcpTagLength: number;
  aead: boolean;
}

export const SRTP_PROFILES: Readonly<Record<SrtpProfile, Readonly<SrtpProfileParameters>>> = {
  AES_CM_128_HMAC_SHA1_80: { masterKeyLength: 16, masterSaltLength: 14, sessionSaltLength: 14, authKeyLength: 20, srtpTagLength: 10, srtcpTagLength: 10, aead: false },
  AES_CM_128_HMAC_SHA1_32: { masterKeyLength: 16, masterSaltLength: 14, sessionSaltLength: 14, authKeyLength: 20, srtpTagLength: 4, srtcpTagLength: 10, aead: false },
  AEAD_AES_128_GCM: { masterKeyLength: 16, masterSaltLength: 12, sessionSaltLength: 12, authKeyLength: 0, srtpTagLength: 16, srtcpTagLength: 16, aead: true },
  AEAD_AES_256_GCM: { masterKeyLength: 32, masterSaltLength: 12, sessionSaltLength: 12, authKeyLength: 0, srtpTagLength: 16, srtcpTagLength: 16, aead: true },
};

/** Key derivation labels (RFC 3711 §4.3.1, §4.3.2). */
export const SrtpLabel = {
  RTP_ENCRYPTION: 0x00,
  RTP_AUTHENTICATION: 0x01,
  RTP_SALT: 0x02,
  RTCP_ENCRYPTION: 0x03,
  RTCP_AUTHENTICATION: 0x04,
  RTCP_SALT: 0x05,
} as const;

/** The keys one of SRTP or SRTCP uses. */
export interface SrtpSessionKeys {
  encryptionKey: Buffer;
  /** Empty for the AEAD profiles. */
  authenticationKey: Buffer;
  salt: Buffer;
}

/** The largest SRTP index (2^48 − 1) and SRTCP index (2^31 − 1) one key may protect (RFC 3711 §9.2). */
export const MAX_SRTP_INDEX = 2 ** 48 - 1;
export const MAX_SRTCP_INDEX = 0x7fffffff;
const AES_BLOCK = 16;
const PRF_SALT_LENGTH = 14;

// ------------------------------------------------------------ AES-CM and the KDF

/**
 * `length` bytes of AES counter-mode keystream (RFC 3711 §4.1.1) from the
 * 16-byte `iv`: E(k, IV) ‖ E(k, IV + 1 mod 2^128) ‖ …, with a 128- or
 * 256-bit key. SRTP's IVs end in 16 zero bits, room for the 2^16 blocks one
 * packet may use; more is refused.
 */
export function aesCmKeystream(key: Buffer, iv: Buffer, length: number): Buffer {
  if (key.length !== 16 && key.length !== 32) throw new SrtpError('ERR_SRTP_KEY', `AES-CM: key of ${key.length} bytes, expected 16 or 32`);
  if (iv.length !== AES_BLOCK) throw new SrtpError('ERR_SRTP_KEY', `AES-CM: IV of ${iv.length} bytes, expected 16`);
  if (!Number.isInteger(length) || length < 0 || length > AES_BLOCK * 0x10000) {
    throw new SrtpError('ERR_SRTP_TOO_LONG', `AES-CM: ${length} bytes of keystream asked for, at most ${AES_BLOCK * 0x10000} follow one IV`);
  }
  const cipher = createCipheriv(key.length === 16 ? 'aes-128-ctr' : 'aes-256-ctr', key, iv);
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

function xorInto(target: Buffer, source: Buffer): Buffer {
  for (let i = 0; i < target.length; i++) target[i]! ^= source[i]!;
  return target;
}

/**
 * The AES-CM PRF of RFC 3711 §4.3.1/§4.3.3: `length` bytes of session key
 * material for `label`, with `indexDivKdr` (index DIV key_derivation_rate,
 * 0 for the default rate 0). The master salt is 14 bytes, or 12 (GCM),
 * right-padded with zeros.
 */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number, indexDivKdr = 0): Buffer {
  if (masterSalt.length !== PRF_SALT_LENGTH && masterSalt.length !== 12) {
    throw new SrtpError('ERR_SRTP_KEY', `SRTP key derivation: master salt of ${masterSalt.length} bytes, expected 14 or 12`);
  }
  if (!Number.isInteger(label) || label < 0 || label > 0xff) throw new SrtpError('ERR_SRTP_KEY', `SRTP key derivation: label ${label}, expected 0..255`);
  if (!Number.isInteger(indexDivKdr) || indexDivKdr < 0 || indexDivKdr > MAX_SRTP_INDEX) {
    throw new SrtpError('ERR_SRTP_KEY', `SRTP key derivation: index DIV kdr ${indexDivKdr}, expected 0..2^48-1`);
  }
  // key_id = label || r (56 bits), right-aligned against the 112-bit salt; x * 2^16 is the IV.
  const iv = Buffer.alloc(AES_BLOCK);
  masterSalt.copy(iv, 0);
  iv[7]! ^= label;
  iv[8]! ^= Math.floor(indexDivKdr / 2 ** 40) & 0xff;
  iv[9]! ^= Math.floor(indexDivKdr / 2 ** 32) & 0xff;
  iv.writeUInt32BE((iv.readUInt32BE(10) ^ indexDivKdr % 2 ** 32) >>> 0, 10);
  return aesCmKeystream(masterKey, iv, length);
}

/** The session keys of SRTP (`'rtp'`) or SRTCP (`'rtcp'`) for a profile and master key (RFC 3711 §4.3). */
export function deriveSessionKeys(profile: SrtpProfile, masterKey: Buffer, masterSalt: Buffer, which: 'rtp' | 'rtcp'): SrtpSessionKeys {
  const p = profileParameters(profile);
  checkLength('master key', masterKey, p.masterKeyLength);
  checkLength('master salt', masterSalt, p.masterSaltLength);
  const base = which === 'rtp' ? SrtpLabel.RTP_ENCRYPTION : SrtpLabel.RTCP_ENCRYPTION;
  return {
    encryptionKey: deriveSessionKey(masterKey, masterSalt, base, p.masterKeyLength),
    authenticationKey: p.authKeyLength > 0 ? deriveSessionKey(masterKey, masterSalt, base + 1, p.authKeyLength) : Buffer.alloc(0),
    salt: deriveSessionKey(masterKey, masterSalt, base + 2, p.sessionSaltLength),
  };
}

function profileParameters(profile: SrtpProfile): SrtpProfileParameters {
  const p = SRTP_PROFILES[profile];
  if (!p) throw new SrtpError('ERR_SRTP_OPTIONS', `SRTP profile ${String(profile)} is not supported; expected one of ${Object.keys(SRTP_PROFILES).join(', ')}`);
  return p;
}

function checkLength(what: string, value: Buffer, expected: number): void {
  if (!Buffer.isBuffer(value) || value.length !== expected) {
    throw new SrtpError('ERR_SRTP_KEY', `SRTP ${what}: ${Buffer.isBuffer(value) ? `${value.length} bytes` : 'not a Buffer'}, expected ${expected} bytes`);
  }
}

// ------------------------------------------------------------ index and replay

/**
 * RFC 3711 Appendix A: the packet index of sequence number `seq`, given the
 * highest index `highest` seen so far (`ROC = highest DIV 2^16`, `s_l = highest mod 2^16`).
 */
export function estimateSrtpIndex(seq: number, highest: number): number {
  const roc = Math.floor(highest / 0x10000);
  const sl = highest % 0x10000;
  let v: number;
  if (sl < 0x8000) v = seq - sl > 0x8000 ? roc - 1 : roc;
  else v = sl - 0x8000 > seq ? roc + 1 : roc;
  return v * 0x10000 + seq;
}

/** RFC 3711 §3.3.2 sliding replay window over indices. */
export class ReplayWindow {
  readonly size: number;
  readonly #seen: Uint8Array;
  #highest = -1;

  constructor(size: number) {
    this.size = size;
    this.#seen = new Uint8Array(size);
  }

  get highest(): number {
    return this.#highest;
  }

  /** `'new'` (ahead of the window or inside it and unseen), `'replayed'`, or `'too-old'` (behind the window). */
  check(index: number): 'new' | 'replayed' | 'too-old' {
    if (this.#highest < 0 || index > this.#highest) return 'new';
    if (this.#highest - index >= this.size) return 'too-old';
    return this.#seen[index % this.size] ? 'replayed' : 'new';
  }

  /** Record an authenticated index (after `check` said `'new'`). */
  accept(index: number): void {
    if (this.#highest < 0 || index - this.#highest >= this.size) {
      this.#seen.fill(0);
      this.#highest = index;
    } else if (index > this.#highest) {
      for (let i = this.#highest + 1; i <= index; i++) this.#seen[i % this.size] = 0;
      this.#highest = index;
    }
    this.#seen[index % this.size] = 1;
  }
}

// ------------------------------------------------------------ the context

interface MasterKeyOptions {
  profile: SrtpProfile;
  masterKey: Buffer;
  masterSalt: Buffer;
}

interface SessionKeyOptions {
  profile: SrtpProfile;
  /** Session keys handed over directly (e.g. RFC 7714's test vectors), bypassing the KDF. */
  sessionKeys: { rtp: SrtpSessionKeys; rtcp: SrtpSessionKeys };
}

export type SrtpContextOptions = (MasterKeyOptions | SessionKeyOptions) & {
  /** Replay window in packets, 64–32768 (default 128). */
  replayWindow?: number;
  /** Rollover counter of the first packet of each SSRC, when joining a stream late (RFC 4568 §6.3.1; default 0). */
  initialRolloverCounter?: number;
  /** SRTCP index of the first SRTCP packet sent for each SSRC (default 0, RFC 3711 §3.4). */
  initialSrtcpIndex?: number;
};

export interface ProtectRtcpOptions {
  /** Set the E bit and encrypt (default true); false only authenticates. */
  encrypt?: boolean;
}

/**
 * SRTP/SRTCP protection for one direction of one session. `protect*` for
 * the sending side, `unprotect*` for the receiving side; each keeps its own
 * per-SSRC state. Throws `SrtpError`; `unprotect*` leaves no trace of a
 * packet that fails (`ERR_SRTP_AUTH`, `ERR_SRTP_REPLAY`, …).
 */
export class SrtpContext {
  readonly profile: SrtpProfile;
  readonly #p: SrtpProfileParameters;
  readonly #rtp: SrtpSessionKeys;
  readonly #rtcp: SrtpSessionKeys;
  readonly #window: number;
  readonly #initialRoc: number;
  readonly #initialSrtcpIndex: number;
  readonly #sendRtp = new Map<number, ReplayWindow>();
  readonly #sendRtcp = new Map<number, number>();
  readonly #recvRtp = new Map<number, ReplayWindow>();
  readonly #recvRtcp = new Map<number, ReplayWindow>();

  constructor(options: SrtpContextOptions) {
    this.profile = options.profile;
    this.#p = profileParameters(options.profile);
    if ('sessionKeys' in options) {
      this.#rtp = this.#checkSessionKeys('SRTP', options.sessionKeys.rtp);
      this.#rtcp = this.#checkSessionKeys('SRTCP', options.sessionKeys.rtcp);
    } else {
      this.#rtp = deriveSessionKeys(options.profile, options.masterKey, options.masterSalt, 'rtp');
      this.#rtcp = deriveSessionKeys(options.profile, options.masterKey, options.masterSalt, 'rtcp');
    }
    this.#window = options.replayWindow ?? 128;
    if (!Number.isInteger(this.#window) || this.#window < 64 || this.#window > 0x8000) {
      throw new SrtpError('ERR_SRTP_OPTIONS', `SRTP replay window: ${this.#window} packets, expected 64..32768 (RFC 3711 §3.3.2 asks for at least 64)`);
    }
    this.#initialRoc = options.initialRolloverCounter ?? 0;
    if (!Number.isInteger(this.#initialRoc) || this.#initialRoc < 0 || this.#initialRoc > 0xffffffff) {
      throw new SrtpError('ERR_SRTP_OPTIONS', `SRTP initial rollover counter: ${this.#initialRoc}, expected 0..2^32-1`);
    }
    this.#initialSrtcpIndex = options.initialSrtcpIndex ?? 0;
    if (!Number.isInteger(this.#initialSrtcpIndex) || this.#initialSrtcpIndex < 0 || this.#initialSrtcpIndex > MAX_SRTCP_INDEX) {
      throw new SrtpError('ERR_SRTP_OPTIONS', `SRTCP initial index: ${this.#initialSrtcpIndex}, expected 0..2^31-1`);
    }
  }

  #checkSessionKeys(what: string, keys: SrtpSessionKeys): SrtpSessionKeys {
    checkLength(`${what} session encryption key`, keys.encryptionKey, this.#p.masterKeyLength);
    checkLength(`${what} session authentication key`, keys.authenticationKey, this.#p.authKeyLength);
    checkLength(`${what} session salt`, keys.salt, this.#p.sessionSaltLength);
    return { encryptionKey: Buffer.from(keys.encryptionKey), authenticationKey: Buffer.from(keys.authenticationKey), salt: Buffer.from(keys.salt) };
  }

  /** Bytes SRTP adds to an RTP packet. */
  get srtpOverhead(): number {
    return this.#p.srtpTagLength;
  }

  /** Bytes SRTCP adds to an RTCP packet (index word and tag). */
  get srtcpOverhead(): number {
    return 4 + this.#p.srtcpTagLength;
  }

  /** The rollover counter of the highest packet sent (`'send'`) or authenticated (`'receive'`) for `ssrc`, if any. */
  rolloverCounter(ssrc: number, direction: 'send' | 'receive'): number | undefined {
    const w = (direction === 'send' ? this.#sendRtp : this.#recvRtp).get(ssrc);
    return w ? Math.floor(w.highest / 0x10000) : undefined;
  }

  // ---------------------------------------------------------- SRTP

  /** Protect an RTP packet: returns header ‖ encrypted payload ‖ tag. */
  protectRtp(packet: Uint8Array): Buffer {
    const buf = asBuffer(packet);
    const headerLength = this.#rtpHeaderLength(buf);
    const seq = buf.readUInt16BE(2);
    const ssrc = buf.readUInt32BE(8);
    let window = this.#sendRtp.get(ssrc);
    const index = window ? estimateSrtpIndex(seq, window.highest) : this.#initialRoc * 0x10000 + seq;
    if (index > MAX_SRTP_INDEX) throw new SrtpError('ERR_SRTP_KEY_EXHAUSTED', `SRTP: SSRC ${ssrc} reached the 2^48 packet limit of its key; re-key`);
    if (window) {
      const verdict = window.check(index);
      if (verdict !== 'new') {
        throw new SrtpError('ERR_SRTP_REPLAY', `SRTP send: SSRC ${ssrc} sequence number ${seq} (index ${index}) was already used or is too old; reusing it would reuse keystream`);
      }
    }
    const header = buf.subarray(0, headerLength);
    const payload = buf.subarray(headerLength);
    let out: Buffer;
    if (this.#p.aead) {
      const cipher = createCipheriv(this.#gcmAlgorithm(), this.#rtp.encryptionKey, this.#rtpGcmIv(ssrc, index), { authTagLength: 16 });
      cipher.setAAD(header);
      out = Buffer.concat([header, cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
    } else {
      const encrypted = xorInto(Buffer.from(payload), aesCmKeystream(this.#rtp.encryptionKey, this.#cmIv(this.#rtp.salt, ssrc, index), payload.length));
      const authenticated = Buffer.concat([header, encrypted]);
      out = Buffer.concat([authenticated, this.#rtpTag(authenticated, index)]);
    }
    if (!window) {
      window = new ReplayWindow(this.#window);
      this.#sendRtp.set(ssrc, window);
    }
    window.accept(index);
    return out;
  }

  /** Check and decrypt an SRTP packet: returns the RTP packet. */
  unprotectRtp(packet: Uint8Array): Buffer {
    const buf = asBuffer(packet);
    const tagLength = this.#p.srtpTagLength;
    if (buf.length < 12 + tagLength) throw new SrtpError('ERR_SRTP_TRUNCATED', `SRTP: packet of ${buf.length} bytes, expected at least ${12 + tagLength}`);
    const body = buf.subarray(0, buf.length - tagLength);
    const tag = buf.subarray(buf.length - tagLength);
    const headerLength = this.#rtpHeaderLength(body);
    const seq = buf.readUInt16BE(2);
    const ssrc = buf.readUInt32BE(8);
    const window = this.#recvRtp.get(ssrc);
    const index = window ? estimateSrtpIndex(seq, window.highest) : this.#initialRoc * 0x10000 + seq;
    if (index < 0 || index > MAX_SRTP_INDEX) throw new SrtpError('ERR_SRTP_INDEX', `SRTP: SSRC ${ssrc} sequence number ${seq} falls before the start of the stream`);
    if (window) {
      const verdict = window.check(index);
      if (verdict !== 'new') throw new SrtpError('ERR_SRTP_REPLAY', `SRTP: SSRC ${ssrc} sequence number ${seq} (index ${index}) ${verdict === 'replayed' ? 'was already received' : 'is behind the replay window'}`);
    }
    const header = body.subarray(0, headerLength);
    let plain: Buffer;
    if (this.#p.aead) {
      const decipher = createDecipheriv(this.#gcmAlgorithm(), this.#rtp.encryptionKey, this.#rtpGcmIv(ssrc, index), { authTagLength: 16 });
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      plain = this.#finishGcm(decipher, body.subarray(headerLength), `SRTP: SSRC ${ssrc} sequence number ${seq}`);
    } else {
      if (!timingSafeEqual(this.#rtpTag(body, index), tag)) throw new SrtpError('ERR_SRTP_AUTH', `SRTP: SSRC ${ssrc} sequence number ${seq}: authentication tag does not match`);
      const payload = body.subarray(headerLength);
      plain = xorInto(Buffer.from(payload), aesCmKeystream(this.#rtp.encryptionKey, this.#cmIv(this.#rtp.salt, ssrc, index), payload.length));
    }
    this.#accept(this.#recvRtp, ssrc, index);
    return Buffer.concat([header, plain]);
  }

  #rtpHeaderLength(buf: Buffer): number {
    try {
      return rtpHeaderLength(buf);
    } catch (err) {
      throw new SrtpError('ERR_SRTP_NOT_RTP', `SRTP: not an RTP packet: ${(err as Error).message}`, { cause: err });
    }
  }

  #rtpTag(authenticated: Buffer, index: number): Buffer {
    const roc = Buffer.alloc(4);
    roc.writeUInt32BE(Math.floor(index / 0x10000) >>> 0);
    return createHmac('sha1', this.#rtp.authenticationKey).update(authenticated).update(roc).digest().subarray(0, this.#p.srtpTagLength);
  }

  /** RFC 3711 §4.1.1: IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (i · 2^16). */
  #cmIv(salt: Buffer, ssrc: number, index: number): Buffer {
    const iv = Buffer.alloc(AES_BLOCK);
    salt.copy(iv, 0);
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt16BE(iv.readUInt16BE(8) ^ Math.floor(index / 2 ** 32), 8);
    iv.writeUInt32BE((iv.readUInt32BE(10) ^ index % 2 ** 32) >>> 0, 10);
    return iv;
  }

  /** RFC 7714 §8.1: IV = (00 00 ‖ SSRC ‖ ROC ‖ SEQ) XOR salt. */
  #rtpGcmIv(ssrc: number, index: number): Buffer {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(ssrc, 2);
    iv.writeUInt32BE(Math.floor(index / 0x10000) >>> 0, 6);
    iv.writeUInt16BE(index % 0x10000, 10);
    return xorInto(iv, this.#rtp.salt);
  }

  #gcmAlgorithm(): 'aes-128-gcm' | 'aes-256-gcm' {
    return this.#p.masterKeyLength === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
  }

  #finishGcm(decipher: ReturnType<typeof createDecipheriv>, ciphertext: Buffer, what: string): Buffer {
    const plain = decipher.update(ciphertext);
    try {
      return Buffer.concat([plain, decipher.final()]);
    } catch (err) {
      throw new SrtpError('ERR_SRTP_AUTH', `${what}: authentication tag does not match`, { cause: err });
    }
  }

  #accept(map: Map<number, ReplayWindow>, ssrc: number, index: number): void {
    let window = map.get(ssrc);
    if (!window) {
      window = new ReplayWindow(this.#window);
      map.set(ssrc, window);
    }
    window.accept(index);
  }

  // ---------------------------------------------------------- SRTCP

  /** Protect an RTCP compound packet: header ‖ (encrypted) rest ‖ E‖index ‖ tag (AEAD: tag before E‖index). */
  protectRtcp(packet: Uint8Array, options: ProtectRtcpOptions = {}): Buffer {
    const buf = asBuffer(packet);
    this.#checkRtcp(buf, buf.length, 'SRTCP send');
    const encrypt = options.encrypt ?? true;
    const ssrc = buf.readUInt32BE(4);
    const index = this.#sendRtcp.get(ssrc) ?? this.#initialSrtcpIndex;
    if (index > MAX_SRTCP_INDEX) throw new SrtpError('ERR_SRTP_KEY_EXHAUSTED', `SRTCP: SSRC ${ssrc} reached the 2^31 packet limit of its key; re-key`);
    const eIndex = Buffer.alloc(4);
    eIndex.writeUInt32BE(((encrypt ? 0x80000000 : 0) | index) >>> 0);
    let out: Buffer;
    if (this.#p.aead) {
      const cipher = createCipheriv(this.#gcmAlgorithm(), this.#rtcp.encryptionKey, this.#rtcpGcmIv(ssrc, index), { authTagLength: 16 });
      if (encrypt) {
        cipher.setAAD(Buffer.concat([buf.subarray(0, 8), eIndex]));
        out = Buffer.concat([buf.subarray(0, 8), cipher.update(buf.subarray(8)), cipher.final(), cipher.getAuthTag(), eIndex]);
      } else {
        cipher.setAAD(Buffer.concat([buf, eIndex]));
        cipher.final();
        out = Buffer.concat([buf, cipher.getAuthTag(), eIndex]);
      }
    } else {
      const rest = encrypt
        ? xorInto(Buffer.from(buf.subarray(8)), aesCmKeystream(this.#rtcp.encryptionKey, this.#cmIv(this.#rtcp.salt, ssrc, index), buf.length - 8))
        : buf.subarray(8);
      const authenticated = Buffer.concat([buf.subarray(0, 8), rest, eIndex]);
      out = Buffer.concat([authenticated, this.#rtcpTag(authenticated)]);
    }
    this.#sendRtcp.set(ssrc, index + 1);
    return out;
  }

  /** Check and decrypt an SRTCP packet: returns the RTCP compound packet. */
  unprotectRtcp(packet: Uint8Array): Buffer {
    const buf = asBuffer(packet);
    const tagLength = this.#p.srtcpTagLength;
    const minimum = 8 + 4 + tagLength;
    if (buf.length < minimum) throw new SrtpError('ERR_SRTP_TRUNCATED', `SRTCP: packet of ${buf.length} bytes, expected at least ${minimum}`);
    const aead = this.#p.aead;
    // RFC 3711: … ‖ E‖index ‖ tag. RFC 7714: … ‖ tag ‖ E‖index.
    const eIndexAt = aead ? buf.length - 4 : buf.length - tagLength - 4;
    const eIndex = buf.subarray(eIndexAt, eIndexAt + 4);
    const encrypted = (eIndex[0]! & 0x80) !== 0;
    const index = eIndex.readUInt32BE(0) & 0x7fffffff;
    const rtcpLength = buf.length - 4 - tagLength;
    this.#checkRtcp(buf, rtcpLength, 'SRTCP');
    const ssrc = buf.readUInt32BE(4);
    const window = this.#recvRtcp.get(ssrc);
    if (window) {
      const verdict = window.check(index);
      if (verdict !== 'new') throw new SrtpError('ERR_SRTP_REPLAY', `SRTCP: SSRC ${ssrc} index ${index} ${verdict === 'replayed' ? 'was already received' : 'is behind the replay window'}`);
    }
    let rtcp: Buffer;
    const what = `SRTCP: SSRC ${ssrc} index ${index}`;
    if (aead) {
      const tag = buf.subarray(rtcpLength, rtcpLength + tagLength);
      const decipher = createDecipheriv(this.#gcmAlgorithm(), this.#rtcp.encryptionKey, this.#rtcpGcmIv(ssrc, index), { authTagLength: 16 });
      decipher.setAuthTag(tag);
      if (encrypted) {
        decipher.setAAD(Buffer.concat([buf.subarray(0, 8), eIndex]));
        rtcp = Buffer.concat([buf.subarray(0, 8), this.#finishGcm(decipher, buf.subarray(8, rtcpLength), what)]);
      } else {
        decipher.setAAD(Buffer.concat([buf.subarray(0, rtcpLength), eIndex]));
        this.#finishGcm(decipher, Buffer.alloc(0), what);
        rtcp = Buffer.from(buf.subarray(0, rtcpLength));
      }
    } else {
      const authenticated = buf.subarray(0, buf.length - tagLength);
      if (!timingSafeEqual(this.#rtcpTag(authenticated), buf.subarray(buf.length - tagLength))) {
        throw new SrtpError('ERR_SRTP_AUTH', `${what}: authentication tag does not match`);
      }
      const rest = buf.subarray(8, rtcpLength);
      rtcp = Buffer.concat([
        buf.subarray(0, 8),
        encrypted ? xorInto(Buffer.from(rest), aesCmKeystream(this.#rtcp.encryptionKey, this.#cmIv(this.#rtcp.salt, ssrc, index), rest.length)) : rest,
      ]);
    }
    this.#accept(this.#recvRtcp, ssrc, index);
    return rtcp;
  }

  #checkRtcp(buf: Buffer, length: number, what: string): void {
    if (length < 8) throw new SrtpError('ERR_SRTP_TRUNCATED', `${what}: RTCP part of ${length} bytes, expected at least 8`);
    if (buf[0]! >> 6 !== 2 || buf[1]! < 192 || buf[1]! > 223) {
      throw new SrtpError('ERR_SRTP_NOT_RTCP', `${what}: first bytes 0x${buf.subarray(0, 2).toString('hex')} are not an RTCP version 2 header`);
    }
  }

  #rtcpTag(authenticated: Buffer): Buffer {
    return createHmac('sha1', this.#rtcp.authenticationKey).update(authenticated).digest().subarray(0, this.#p.srtcpTagLength);
  }

  /** RFC 7714 §9.1: IV = (00 00 ‖ SSRC ‖ 00 00 ‖ 0 ‖ SRTCP index) XOR salt. */
  #rtcpGcmIv(ssrc: number, index: number): Buffer {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(ssrc, 2);
    iv.writeUInt32BE(index & 0x7fffffff, 8);
    return xorInto(iv, this.#rtcp.salt);
  }

  /** Never show key material. */
  [inspect.custom](): string {
    return `SrtpContext { profile: '${this.profile}' }`;
  }

  toJSON(): { profile: SrtpProfile } {
    return { profile: this.profile };
  }
}

function asBuffer(packet: Uint8Array): Buffer {
  return Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
}
