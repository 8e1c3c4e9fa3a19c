/**
 * The MQTT topics of one phone and the payloads on them (DESIGN.md
 * "Provisioning over MQTT"): a pure codec, bytes in, values out.
 *
 *   <prefix>/<deviceId>/status               retained  "online" | "offline" (the last will)
 *   <prefix>/<deviceId>/info                 retained  {deviceId, firmware, addresses, role, nat, config: {applied, pending}, ...}
 *   <prefix>/<deviceId>/config/desired       retained  {version, config}            (from the operator)
 *   <prefix>/<deviceId>/config/reported      retained  {version, status, errors, at} (from the phone)
 *   <prefix>/<deviceId>/cmd/<name>                     {id, args}                 → cmd/<name>/response {id, ok, result | error}
 *   <prefix>/<deviceId>/event/<kind>                   hook, call                 (not retained)
 *   <prefix>/<deviceId>/telemetry                      periodic figures           (not retained)
 */
import { PartylineError } from '../errors.js';

export const STATUS_ONLINE = 'online';
export const STATUS_OFFLINE = 'offline';
export const COMMAND_NAMES = ['call', 'hangup', 'reboot', 'log-level', 'status'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];
export const REPORT_STATUSES = ['applied', 'rejected', 'rolled-back'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** Largest desired-config or command payload accepted (a configuration is a few KiB). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A configuration version: what the operator chose (a number or a short string). */
export type ConfigVersion = string | number;

export class ProvisioningPayloadError extends PartylineError {
  constructor(message: string) {
    super('ERR_PROVISIONING_PAYLOAD', message);
  }
}

export interface DeviceTopics {
  readonly base: string;
  readonly status: string;
  readonly info: string;
  readonly desired: string;
  readonly reported: string;
  readonly telemetry: string;
  /** What the phone subscribes to: its desired config and its commands. */
  readonly subscriptions: readonly string[];
  command(name: string): string;
  response(name: string): string;
  event(kind: string): string;
}

export function isCommandName(name: string): name is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(name);
}

export function isDeviceId(text: string): boolean {
  return DEVICE_ID.test(text);
}

/** The topics of one device. Throws for a device id that is not topic-safe. */
export function deviceTopics(prefix: string, deviceId: string): DeviceTopics {
  if (!isDeviceId(deviceId)) throw new ProvisioningPayloadError(`device id ${JSON.stringify(deviceId)}: expected 1-64 of A-Z a-z 0-9 _ -`);
  if (prefix === '' || /[#+]/.test(prefix) || prefix.startsWith('/') || prefix.endsWith('/')) {
    throw new ProvisioningPayloadError(`topic prefix ${JSON.stringify(prefix)}: expected no wildcards and no leading or trailing "/"`);
  }
  const base = `${prefix}/${deviceId}`;
  return {
    base,
    status: `${base}/status`,
    info: `${base}/info`,
    desired: `${base}/config/desired`,
    reported: `${base}/config/reported`,
    telemetry: `${base}/telemetry`,
    subscriptions: [`${base}/config/desired`, `${base}/cmd/+`],
    command: (name) => `${base}/cmd/${name}`,
    response: (name) => `${base}/cmd/${name}/response`,
    event: (kind) => `${base}/event/${kind}`,
  };
}

/** What arrived on one of the topics the phone subscribes to. */
export type Incoming = { kind: 'desired' } | { kind: 'command'; name: string } | { kind: 'other' };

export function classifyTopic(topics: DeviceTopics, topic: string): Incoming {
  if (topic === topics.desired) return { kind: 'desired' };
  const commandPrefix = `${topics.base}/cmd/`;
  if (topic.startsWith(commandPrefix)) {
    const name = topic.slice(commandPrefix.length);
    if (!name.includes('/')) return { kind: 'command', name };
  }
  return { kind: 'other' };
}

function parseJsonObject(payload: Uint8Array, what: string): Record<string, unknown> {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new ProvisioningPayloadError(`${what}: ${payload.length} bytes, expected at most ${MAX_PAYLOAD_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch (err) {
    throw new ProvisioningPayloadError(`${what}: expected a JSON object, got text that is not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProvisioningPayloadError(`${what}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

export function isConfigVersion(value: unknown): value is ConfigVersion {
  return (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) || (typeof value === 'string' && /^[\x21-\x7e]{1,64}$/.test(value));
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

export interface Desired {
  version: ConfigVersion;
  /** The partial configuration overlay; validated against the schema by the apply step. */
  config: unknown;
}

/**
 * `config/desired`: `{version, config}`. An empty payload (the operator
 * cleared the retained message) is `null`. Throws ProvisioningPayloadError
 * naming what was wrong.
 */
export function decodeDesired(payload: Uint8Array): Desired | null {
  if (payload.length === 0) return null;
  const value = parseJsonObject(payload, 'config/desired');
  const problems: string[] = [];
  if (!isConfigVersion(value.version)) problems.push(`version: expected an integer >= 0 or 1-64 printable characters, got ${describeValue(value.version)}`);
  if (!('config' in value)) problems.push('config: expected a map of settings, got nothing');
  const extra = Object.keys(value).filter((k) => k !== 'version' && k !== 'config');
  if (extra.length > 0) problems.push(`expected only "version" and "config", got ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  if (problems.length > 0) throw new ProvisioningPayloadError(`config/desired: ${problems.join('; ')}`);
  return { version: value.version as ConfigVersion, config: value.config };
}

export function encodeDesired(desired: Desired): string {
  return JSON.stringify({ version: desired.version, config: desired.config });
}

export interface Report {
  /** The desired version this is about (null when the payload had none that could be read). */
  version: ConfigVersion | null;
  status: ReportStatus;
  /** Every problem (rejected), or the reason (rolled-back); empty when applied. */
  errors: string[];
  /** When the phone decided (ISO 8601). */
  at: string;
}

export function encodeReport(report: Report): string {
  return JSON.stringify(report);
}

export function decodeReport(payload: Uint8Array): Report | null {
  if (payload.length === 0) return null;
  const value = parseJsonObject(payload, 'config/reported');
  const statusOk = typeof value.status === 'string' && (REPORT_STATUSES as readonly string[]).includes(value.status);
  const versionOk = value.version === null || isConfigVersion(value.version);
  const errorsOk = Array.isArray(value.errors) && value.errors.every((e) => typeof e === 'string');
  if (!statusOk || !versionOk || !errorsOk) throw new ProvisioningPayloadError('config/reported: expected {version, status: applied|rejected|rolled-back, errors: [...]}');
  return { version: value.version as ConfigVersion | null, status: value.status as ReportStatus, errors: value.errors as string[], at: typeof value.at === 'string' ? value.at : '' };
}

export interface CommandRequest {
  /** The correlation id the response carries; null when the request had none that could be read. */
  id: string | null;
  args: Record<string, unknown>;
}

/**
 * `cmd/<name>`: `{id, args?}`. Throws ProvisioningPayloadError (with the id
 * when one could be read, so the error response still correlates).
 */
export function decodeCommand(name: string, payload: Uint8Array): CommandRequest {
  const what = `cmd/${name}`;
  const value = parseJsonObject(payload, what);
  const id = typeof value.id === 'string' && value.id.length > 0 && value.id.length <= 128 ? value.id : null;
  const problems: string[] = [];
  if (id === null) problems.push(`id: expected a correlation id (1-128 characters), got ${describeValue(value.id)}`);
  const args = value.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) problems.push(`args: expected an object, got ${describeValue(value.args)}`);
  const extra = Object.keys(value).filter((k) => k !== 'id' && k !== 'args');
  if (extra.length > 0) problems.push(`expected only "id" and "args", got ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  if (!isCommandName(name)) problems.push(`unknown command ${JSON.stringify(name)}; available: ${COMMAND_NAMES.join(', ')}`);
  if (problems.length > 0) throw Object.assign(new ProvisioningPayloadError(`${what}: ${problems.join('; ')}`), { id });
  return { id, args: args as Record<string, unknown> };
}

export type CommandResponse =
  | { id: string | null; ok: true; result: unknown }
  | { id: string | null; ok: false; error: { code: string; message: string } };

export function encodeResponse(response: CommandResponse): string {
  return JSON.stringify(response);
}

/** The id a decodeCommand error carries, if it could read one. */
export function commandErrorId(err: unknown): string | null {
  const id = (err as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : null;
}
