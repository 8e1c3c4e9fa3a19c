import { WireError } from '../errors.js';

/**
 * The versioned message envelope carried inside every Noise transport
 * message: `{v, type, id?, re?, body}` encoded as UTF-8 JSON.
 *
 * - `type` names the message (`login.request`, `attach`, `error` ...).
 * - `id` marks a request that wants an answer; the answer carries `re: id`.
 * - `body` is an object validated against the schema registered for `type`.
 */
export interface Envelope {
  v: number;
  type: string;
  id?: number;
  re?: number;
  body: Record<string, unknown>;
}

export const ENVELOPE_VERSION = 1;
const TYPE_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const MAX_TYPE_LENGTH = 64;
const MAX_ID = 0xffffffff;
const ALLOWED = new Set(['v', 'type', 'id', 're', 'body']);

export function encodeEnvelope(envelope: Envelope): Buffer {
  return Buffer.from(JSON.stringify(envelope), 'utf8');
}

function fail(code: `ERR_WIRE_${string}`, message: string): never {
  throw new WireError(code, message);
}

function checkId(value: unknown, field: 'id' | 're'): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_ID) {
    fail('ERR_WIRE_ENVELOPE', `envelope.${field}: expected an integer 1..${MAX_ID}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/**
 * Decode and validate an envelope. Every field is checked; the body is only
 * checked to be an object here — its schema is the message registry's job.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new WireError('ERR_WIRE_ENCODING', 'envelope: not valid UTF-8', { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WireError('ERR_WIRE_ENCODING', `envelope: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('ERR_WIRE_ENVELOPE', `envelope: expected an object, got ${Array.isArray(raw) ? 'array' : typeof raw}`);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!ALLOWED.has(key)) fail('ERR_WIRE_ENVELOPE', `envelope.${key.slice(0, 32)}: unknown field`);
  }
  if (obj.v !== ENVELOPE_VERSION) {
    fail('ERR_WIRE_VERSION', `envelope.v: expected ${ENVELOPE_VERSION}, got ${JSON.stringify(obj.v)?.slice(0, 32)}`);
  }
  if (typeof obj.type !== 'string' || obj.type.length > MAX_TYPE_LENGTH || !TYPE_PATTERN.test(obj.type)) {
    fail('ERR_WIRE_ENVELOPE', `envelope.type: expected a dotted lower-case name, got ${JSON.stringify(obj.type)?.slice(0, 80)}`);
  }
  const id = checkId(obj.id, 'id');
  const re = checkId(obj.re, 're');
  if (typeof obj.body !== 'object' || obj.body === null || Array.isArray(obj.body)) {
    fail('ERR_WIRE_ENVELOPE', `envelope.body: expected an object, got ${Array.isArray(obj.body) ? 'array' : obj.body === null ? 'null' : typeof obj.body}`);
  }
  const envelope: Envelope = { v: ENVELOPE_VERSION, type: obj.type, body: obj.body as Record<string, unknown> };
  if (id !== undefined) envelope.id = id;
  if (re !== undefined) envelope.re = re;
  return envelope;
}
