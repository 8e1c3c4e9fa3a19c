import { isIPv4, isIPv6 } from 'node:net';
import { PartylineError } from '../errors.js';

/**
 * `host:port` text as used in configuration files, the host cache and
 * supernode gossip: `10.0.0.1:4000`, `example.org:443`, `[::1]:4000`.
 *
 * Parsing is strict (no whitespace, no default port, decimal ports 1..65535,
 * IPv6 only in brackets) and the result is canonical, so that two spellings
 * of one endpoint give one cache key:
 * - DNS names are lower-cased (they are case-insensitive);
 * - IPv6 addresses are written as RFC 5952 recommends (lower case, longest
 *   zero run compressed, IPv4-mapped addresses in dotted form);
 * - leading zeros in the port are rejected rather than guessed at.
 */
export interface HostPort {
  /** A DNS name, an IPv4 address, or an IPv6 address without brackets. */
  host: string;
  port: number;
}

export const MIN_PORT = 1;
export const MAX_PORT = 65535;

/** Text that is not a valid `host:port`. `reason` says what was wrong. */
export class HostPortError extends PartylineError {
  readonly input: string;
  readonly reason: string;

  constructor(input: string, reason: string) {
    super('ERR_HOST_PORT_INVALID', `expected "host:port", got ${JSON.stringify(input)}`);
    this.input = input;
    this.reason = reason;
  }
}

/** True for an integer in 1..65535. */
export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= MIN_PORT && value <= MAX_PORT;
}

/**
 * Parse `host:port`. Throws {@link HostPortError} (code
 * `ERR_HOST_PORT_INVALID`, message `expected "host:port", got "<text>"`)
 * with the detail in `reason`.
 */
export function parseHostPort(text: string): HostPort {
  const result = tryParse(text);
  if (typeof result === 'string') throw new HostPortError(String(text), result);
  return result;
}

/** True when {@link parseHostPort} would accept `text`. */
export function isHostPort(text: unknown): text is string {
  return typeof text === 'string' && typeof tryParse(text) !== 'string';
}

/**
 * Format a host and port as canonical `host:port` (brackets around IPv6).
 * Throws {@link HostPortError} when the host or the port is invalid.
 */
export function formatHostPort(value: HostPort): string {
  const { host, port } = value;
  const text = typeof host === 'string' && host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  if (!isPort(port)) throw new HostPortError(text, `port ${String(port)} is not an integer in ${MIN_PORT}..${MAX_PORT}`);
  return formatParsed(parseHostPort(text));
}

/** The canonical spelling of `text`, e.g. `[0:0::1]:4000` → `[::1]:4000`. */
export function normalizeHostPort(text: string): string {
  return formatParsed(parseHostPort(text));
}

function formatParsed({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The parsed value, or the reason the text is not valid. */
function tryParse(text: string): HostPort | string {
  if (typeof text !== 'string') return `not a string (${typeof text})`;
  if (text.length === 0) return 'empty';
  if (text.length > 300) return 'too long';
  if (/\s/.test(text)) return 'contains whitespace';

  let hostText: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'missing "]" after IPv6 address';
    hostText = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (!rest.startsWith(':')) return 'missing ":port" after "]"';
    portText = rest.slice(1);
    if (!isIPv6(hostText)) return `"${hostText}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'missing ":port"';
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostText.includes(':')) return 'IPv6 address must be in brackets, e.g. "[::1]:4000"';
  }

  const port = parsePort(portText);
  if (typeof port === 'string') return port;
  const host = canonicalHost(hostText);
  if (host === undefined) return `"${hostText}" is not a host name or IP address`;
  return { host, port };
}

function parsePort(text: string): number | string {
  if (text.length === 0) return 'missing port';
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return `port "${text}" is not a decimal number in ${MIN_PORT}..${MAX_PORT}`;
  const port = Number(text);
  if (port > MAX_PORT) return `port ${port} is out of range ${MIN_PORT}..${MAX_PORT}`;
  return port;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

function canonicalHost(text: string): string | undefined {
  if (text.length === 0) return undefined;
  if (isIPv6(text)) return canonicalIPv6(text);
  if (isIPv4(text)) return text;
  const name = text.toLowerCase();
  if (name.length > 253) return undefined;
  const labels = name.split('.');
  if (!labels.every((label) => LABEL.test(label))) return undefined;
  // `10.0.0.256` and `1.2.3` look like addresses, not names: refuse them.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) return undefined;
  return name;
}

/** RFC 5952 text for a valid IPv6 address (a zone id, if any, is kept as is). */
function canonicalIPv6(text: string): string {
  const percent = text.indexOf('%');
  const address = percent < 0 ? text : text.slice(0, percent);
  const zone = percent < 0 ? '' : text.slice(percent);
  // The WHATWG URL serializer compresses and lower-cases as RFC 5952 asks.
  const serialized = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(serialized);
  if (mapped) {
    const high = parseInt(mapped[1] ?? '0', 16);
    const low = parseInt(mapped[2] ?? '0', 16);
    return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}${zone}`;
  }
  return `${serialized}${zone}`;
}
