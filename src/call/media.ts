import { randomBytes } from 'node:crypto';
import type { SrtpProfile } from '../media/srtp.js';
import { DEFAULT_DTMF_PAYLOAD_TYPE, DEFAULT_OPUS_PAYLOAD_TYPE, makeSrtpKeyMaterial } from '../media/engine/types.js';
import type { MediaStreamStats, StreamParams } from '../media/engine/types.js';
import type { MediaOffer } from './messages.js';

/** What the call layer needs of the media engine (src/media/engine/): one stream per call leg, mixed. */
export interface CallMedia {
  addStream(id: string, params: CallStreamParams, send: (packet: Buffer) => void): void;
  receive(id: string, packet: Buffer): void;
  setHold(id: string, held: boolean): void;
  sendDtmf(id: string, digits: string): void;
  /** The microphone muted for every stream. */
  setMute(muted: boolean): void;
  /** Handset volume 0–10 (5 = 0 dB). */
  setVolume(level: number): void;
  removeStream(id: string): void;
  stats(id: string): CallStreamStats | undefined;
  on(event: 'dtmf', listener: (event: { streamId: string; digit: string }) => void): unknown;
  close(): Promise<void>;
}

/** The engine's stream parameters and figures (src/media/engine/types.ts). */
export type CallStreamParams = StreamParams;
export type CallStreamStats = MediaStreamStats;

/** This side's half of the media parameters, with the secret it sends with. */
export interface LocalMedia {
  offer: MediaOffer;
  key: Buffer;
  salt: Buffer;
}

export interface CodecSettings {
  sampleRate: 16000 | 48000;
  bitrate: number;
  srtpProfile: SrtpProfile;
  dtx: boolean;
}

/** Fresh SRTP master key and salt (the engine's makeSrtpKeyMaterial) and SSRC for one leg. */
export function localMedia(settings: CodecSettings): LocalMedia {
  const { key, salt } = makeSrtpKeyMaterial(settings.srtpProfile);
  return {
    key,
    salt,
    offer: {
      codec: { name: 'opus', sampleRate: settings.sampleRate, bitrate: settings.bitrate, payloadType: DEFAULT_OPUS_PAYLOAD_TYPE, dtmfPayloadType: DEFAULT_DTMF_PAYLOAD_TYPE },
      srtp: { profile: settings.srtpProfile, key: key.toString('base64'), salt: salt.toString('base64') },
      ssrc: randomBytes(4).readUInt32BE(),
    },
  };
}

/**
 * The engine's stream parameters: we encode with our codec settings and
 * protect with our key; we open what the peer sends with its key. Both
 * sides use the caller's SRTP profile (throws when the peer used another);
 * the engine checks the keys' lengths against it when the stream is added.
 */
export function streamParams(local: LocalMedia, remote: MediaOffer, dtx: boolean): CallStreamParams {
  if (remote.srtp.profile !== local.offer.srtp.profile) throw new Error(`the peer uses ${remote.srtp.profile}, not ${local.offer.srtp.profile}`);
  const key = Buffer.from(remote.srtp.key, 'base64');
  const salt = Buffer.from(remote.srtp.salt, 'base64');
  const { sampleRate, bitrate, payloadType, dtmfPayloadType } = local.offer.codec;
  return {
    codec: { sampleRate, bitrate, payloadType, dtmfPayloadType, dtx },
    srtp: { profile: local.offer.srtp.profile, send: { key: local.key, salt: local.salt }, receive: { key, salt } },
    ssrc: local.offer.ssrc,
  };
}
