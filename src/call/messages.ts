import { z } from 'zod';
import { SRTP_PROFILES } from '../media/srtp.js';
import type { SrtpProfile } from '../media/srtp.js';

/**
 * Call signalling (DESIGN.md "Calls"), carried end to end as sealed
 * messages (src/overlay/route/sealed.ts): the supernodes on the way see who
 * calls whom and when, never the SRTP keys or the media parameters.
 *
 *   caller                                   each device of the callee
 *   call.invite {call, media, caps}   ───▶
 *                                      ◀───  reply call.progress {ringing | busy | declined}
 *                                      ◀───  call.answer {call, media, caps}   (request)
 *   reply call.accept {accepted}      ───▶   (false: another device won, or the call is over)
 *   call.cancel {reason}              ───▶   the other devices stop ringing
 *   path.offer (purpose call)         ───▶   media path (src/nat/path/), then SRTP media
 *   call.hold / call.bye / call.reject  ◀──▶
 *
 * Each side sends its own SRTP master key and salt for what it sends
 * (SDES-like, but inside the end-to-end channel), and the Opus parameters
 * it encodes with; Opus decodes any of them.
 */

const srtpProfiles = Object.keys(SRTP_PROFILES) as [SrtpProfile, ...SrtpProfile[]];
const base64 = z.string().max(200).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
export const callId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected a call id');

export const mediaOfferSchema = z.object({
  codec: z.object({
    name: z.literal('opus'),
    sampleRate: z.union([z.literal(16000), z.literal(48000)]),
    bitrate: z.number().int().min(6000).max(510000),
    payloadType: z.number().int().min(96).max(127),
    dtmfPayloadType: z.number().int().min(96).max(127),
  }).strict(),
  srtp: z.object({ profile: z.enum(srtpProfiles), key: base64, salt: base64 }).strict(),
  ssrc: z.number().int().min(0).max(0xffffffff),
}).strict();
export type MediaOffer = z.infer<typeof mediaOfferSchema>;

/** What makes a participant a good conference mixer (DESIGN.md "Calls" → conference). */
export const capabilitiesSchema = z.object({
  /** CPU cores and the 1-minute load average. */
  cores: z.number().int().min(1).max(1024),
  load: z.number().min(0).max(1e4),
  /** The device has a public address (NAT type open/public). */
  publicAddress: z.boolean(),
  /** Upstream bandwidth estimate in kbit/s, 0 when unknown. */
  kbps: z.number().min(0).max(1e7),
}).strict();
export type Capabilities = z.infer<typeof capabilitiesSchema>;

export const callInviteSchema = z.object({
  call: callId,
  media: mediaOfferSchema,
  caps: capabilitiesSchema,
  /** Set when this leg joins a conference the caller mixes. */
  conference: z.object({ parties: z.array(z.string().max(64)).max(6) }).strict().optional(),
}).strict();
export type CallInvite = z.infer<typeof callInviteSchema>;

export const callProgressSchema = z.object({
  call: callId,
  status: z.enum(['ringing', 'busy', 'declined']),
  reason: z.string().max(200).optional(),
}).strict();
export type CallProgress = z.infer<typeof callProgressSchema>;

export const callAnswerSchema = z.object({ call: callId, media: mediaOfferSchema, caps: capabilitiesSchema }).strict();
export type CallAnswer = z.infer<typeof callAnswerSchema>;

export const callAcceptSchema = z.object({ call: callId, accepted: z.boolean(), reason: z.string().max(200).optional() }).strict();
export type CallAccept = z.infer<typeof callAcceptSchema>;

export const CANCEL_REASONS = ['cancelled', 'answered-elsewhere', 'no-answer', 'declined-elsewhere'] as const;
export const callCancelSchema = z.object({ call: callId, reason: z.enum(CANCEL_REASONS) }).strict();

/** The callee turned the call down after it rang (hung up while ringing), or was busy by then. */
export const callRejectSchema = z.object({ call: callId, reason: z.enum(['declined', 'busy']) }).strict();

export const callByeSchema = z.object({ call: callId, reason: z.string().max(200).optional() }).strict();

export const callHoldSchema = z.object({ call: callId, held: z.boolean() }).strict();

/** Ask the mixer (or a more capable party) to add a user to the conference. */
export const conferenceAddSchema = z.object({ call: callId, user: z.string().min(1).max(64) }).strict();
export const conferenceAddResultSchema = z.object({ call: callId, ok: z.boolean(), reason: z.string().max(200).optional() }).strict();

export const CALL_MESSAGE_TYPES = {
  invite: 'call.invite',
  progress: 'call.progress',
  answer: 'call.answer',
  accept: 'call.accept',
  cancel: 'call.cancel',
  reject: 'call.reject',
  bye: 'call.bye',
  hold: 'call.hold',
  conferenceAdd: 'call.conference-add',
  conferenceAddResult: 'call.conference-add-result',
} as const;
