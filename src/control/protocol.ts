/**
 * The local control protocol: newline-delimited JSON over a Unix socket.
 *
 *     request   {"v":1,"id":7,"command":"status","args":{}}
 *     success   {"v":1,"id":7,"ok":true,"result":{...}}
 *     failure   {"v":1,"id":7,"ok":false,"error":{"code":"ERR_CONTROL_ARGS","message":"..."}}
 *
 * One JSON object per line (UTF-8, `\n`; a trailing `\r` and blank lines
 * are tolerated). `v` is optional in requests and always sent in responses;
 * `args` may be left out (= `{}`). A client may send several requests
 * without waiting: responses carry the request's `id` and may come back in
 * any order. A line that is not a valid request gets a failure response
 * with the id it carried, or `"id":null` when it had none, and the
 * connection stays usable. A request line over 64 KiB gets
 * `ERR_CONTROL_LINE_TOO_LONG` and the connection is closed.
 *
 * Pure codecs: no sockets here (server.ts and client.ts own them).
 */
import { z } from 'zod';
import { ControlError } from './errors.js';
import { formatIssues } from './issues.js';

export const CONTROL_PROTOCOL_VERSION = 1;
/** Longest request line a node accepts (bytes, without the newline). */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;
/** Longest response line a client accepts: results (buddy lists, search hits) may be large. */
export const MAX_RESPONSE_LINE_BYTES = 16 * 1024 * 1024;
/** Command names: `status`, `call`, `hook`, `buddies`, `phone.keys` ... */
export const COMMAND_NAME_PATTERN = /^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$/;
export const MAX_COMMAND_NAME_LENGTH = 64;

export interface ControlRequest {
  v?: typeof CONTROL_PROTOCOL_VERSION;
  id: number;
  command: string;
  args: Record<string, unknown>;
}

export interface ControlErrorBody {
  code: string;
  message: string;
}

export interface ControlSuccess {
  v: typeof CONTROL_PROTOCOL_VERSION;
  id: number;
  ok: true;
  result: unknown;
}

export interface ControlFailure {
  v: typeof CONTROL_PROTOCOL_VERSION;
  /** null when the request line was too broken to carry an id. */
  id: number | null;
  ok: false;
  error: ControlErrorBody;
}

export type ControlResponse = ControlSuccess | ControlFailure;

const requestId = z
  .number({ error: 'expected an integer 0..2^53-1' })
  .int({ error: 'expected an integer 0..2^53-1' })
  .min(0, { error: 'expected an integer 0..2^53-1' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'expected an integer 0..2^53-1' });

const commandName = z
  .string({ error: 'expected a command name' })
  .max(MAX_COMMAND_NAME_LENGTH, { error: `expected a command name of at most ${MAX_COMMAND_NAME_LENGTH} characters` })
  .regex(COMMAND_NAME_PATTERN, { error: 'expected a command name (lower case, e.g. "status")' });

export const controlRequestSchema = z.strictObject({
  v: z.literal(CONTROL_PROTOCOL_VERSION).optional(),
  id: requestId,
  command: commandName,
  args: z.record(z.string(), z.unknown(), { error: 'expected a JSON object of arguments' }).optional(),
});

const errorBodySchema = z.object({
  code: z.string().min(1),
  message: z.string(),
});

export const controlResponseSchema = z.discriminatedUnion('ok', [
  z.object({ v: z.literal(CONTROL_PROTOCOL_VERSION).optional(), id: requestId, ok: z.literal(true), result: z.unknown() }),
  z.object({ v: z.literal(CONTROL_PROTOCOL_VERSION).optional(), id: requestId.nullable(), ok: z.literal(false), error: errorBodySchema }),
]);

export type ParsedRequest =
  | { ok: true; request: ControlRequest }
  | { ok: false; id: number | null; error: ControlError };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeLine(line: Buffer | string): string | undefined {
  if (typeof line === 'string') return line;
  try {
    return utf8.decode(line);
  } catch {
    return undefined; // not UTF-8: the caller reports it
  }
}

function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** The id of a request that failed validation, when it carried a usable one. */
function salvageId(value: unknown): number | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const id = (value as Record<string, unknown>).id;
  return requestId.safeParse(id).success ? (id as number) : null;
}

/** Decode and validate one request line (without its newline). Never throws. */
export function parseRequestLine(line: Buffer | string): ParsedRequest {
  const text = decodeLine(line);
  if (text === undefined) {
    return { ok: false, id: null, error: new ControlError('ERR_CONTROL_REQUEST', 'request is not valid UTF-8') };
  }
  const json = parseJson(text);
  if ('error' in json) {
    return { ok: false, id: null, error: new ControlError('ERR_CONTROL_REQUEST', `request is not valid JSON: ${json.error}`) };
  }
  const value = json.value;
  const id = salvageId(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const got = Array.isArray(value) ? 'a list' : JSON.stringify(value);
    return { ok: false, id, error: new ControlError('ERR_CONTROL_REQUEST', `request: expected a JSON object {"id", "command", "args"}, got ${got}`) };
  }
  const version = (value as Record<string, unknown>).v;
  if (version !== undefined && version !== CONTROL_PROTOCOL_VERSION) {
    return {
      ok: false,
      id,
      error: new ControlError('ERR_CONTROL_VERSION', `request: protocol version ${JSON.stringify(version)} is not supported; this node speaks "v": ${CONTROL_PROTOCOL_VERSION}`),
    };
  }
  const parsed = controlRequestSchema.safeParse(value);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error, value, controlRequestSchema);
    return { ok: false, id, error: new ControlError('ERR_CONTROL_REQUEST', `invalid request: ${problems.join('; ')}`) };
  }
  const { v, id: requestIdValue, command, args } = parsed.data;
  return { ok: true, request: { ...(v === undefined ? {} : { v }), id: requestIdValue, command, args: args ?? {} } };
}

/** One request line, newline included. */
export function encodeRequest(id: number, command: string, args: Record<string, unknown> = {}): string {
  const request: ControlRequest = { v: CONTROL_PROTOCOL_VERSION, id, command, args };
  return `${JSON.stringify(request)}\n`;
}

/** One success line, newline included. Throws when the result cannot be written as JSON (BigInt, cycles). */
export function encodeSuccess(id: number, result: unknown): string {
  const response: ControlSuccess = { v: CONTROL_PROTOCOL_VERSION, id, ok: true, result: result === undefined ? null : result };
  return `${JSON.stringify(response)}\n`;
}

/** One failure line, newline included. */
export function encodeFailure(id: number | null, error: ControlErrorBody): string {
  const response: ControlFailure = { v: CONTROL_PROTOCOL_VERSION, id, ok: false, error: { code: error.code, message: error.message } };
  return `${JSON.stringify(response)}\n`;
}

/** Decode and validate one response line; throws ControlError `ERR_CONTROL_PROTOCOL`. */
export function parseResponseLine(line: Buffer | string): ControlResponse {
  const text = decodeLine(line);
  if (text === undefined) throw new ControlError('ERR_CONTROL_PROTOCOL', 'the node answered with a line that is not valid UTF-8');
  const json = parseJson(text);
  if ('error' in json) throw new ControlError('ERR_CONTROL_PROTOCOL', `the node answered with a line that is not valid JSON: ${json.error}`);
  const parsed = controlResponseSchema.safeParse(json.value);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error, json.value, controlResponseSchema);
    throw new ControlError('ERR_CONTROL_PROTOCOL', `the node answered with an invalid response: ${problems.join('; ')}`);
  }
  const data = parsed.data;
  return data.ok
    ? { v: CONTROL_PROTOCOL_VERSION, id: data.id, ok: true, result: data.result }
    : { v: CONTROL_PROTOCOL_VERSION, id: data.id, ok: false, error: data.error };
}

/**
 * Splits a byte stream into lines (without `\n` or a trailing `\r`; blank
 * lines are dropped; `end()` gives a last line that lacks its newline).
 * Throws ControlError `ERR_CONTROL_LINE_TOO_LONG` as soon as a line grows
 * past `maxLineBytes`, before it is complete, so a peer cannot make us
 * buffer without bound.
 */
export class LineDecoder {
  readonly maxLineBytes: number;
  #what: string;
  #parts: Buffer[] = [];
  #size = 0;

  /** `what` names the lines in the error: `request` or `response`. */
  constructor(maxLineBytes: number, what = 'line') {
    this.maxLineBytes = maxLineBytes;
    this.#what = what;
  }

  /** Bytes of the incomplete line held so far. */
  get pending(): number {
    return this.#size;
  }

  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      this.#check(this.#size + newline - start);
      this.#parts.push(chunk.subarray(start, newline));
      const line = Buffer.concat(this.#parts);
      this.#parts = [];
      this.#size = 0;
      const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      if (end > 0) lines.push(line.subarray(0, end));
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.#check(this.#size + chunk.length - start);
      this.#parts.push(chunk.subarray(start));
      this.#size += chunk.length - start;
    }
    return lines;
  }

  /** The stream ended: the last line if it had no newline (undefined when there is none). */
  end(): Buffer | undefined {
    const rest = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#size = 0;
    const end = rest.length > 0 && rest[rest.length - 1] === 0x0d ? rest.length - 1 : rest.length;
    return end > 0 ? rest.subarray(0, end) : undefined;
  }

  #check(length: number): void {
    if (length <= this.maxLineBytes) return;
    this.#parts = [];
    this.#size = 0;
    throw new ControlError('ERR_CONTROL_LINE_TOO_LONG', `${this.#what} line over the ${this.maxLineBytes}-byte limit`);
  }
}
