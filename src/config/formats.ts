/**
 * Text formats used in configuration values: bind addresses, Ed25519 public
 * keys, MQTT broker URLs. (`host:port` lives in src/util/host-port.ts, shared
 * with the host cache.) Pure functions, shared by the schema and by the
 * components that consume the values (login, MQTT).
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';

/** True for a literal IPv4 or IPv6 address (a bind address). */
export function isIpAddress(text: string): boolean {
  return isIPv4(text) || isIPv6(text);
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}=?$/;

/**
 * Decode a 32-byte Ed25519 public key given as 64 hex digits or as base64 /
 * base64url (43 characters, optional `=` padding). Undefined when malformed.
 */
export function decodePublicKey(text: string): Uint8Array | undefined {
  let bytes: Buffer;
  if (HEX_KEY.test(text)) bytes = Buffer.from(text, 'hex');
  else if (BASE64_KEY.test(text)) bytes = Buffer.from(text, 'base64');
  else if (BASE64URL_KEY.test(text)) bytes = Buffer.from(text, 'base64url');
  else return undefined;
  return bytes.length === 32 ? new Uint8Array(bytes) : undefined;
}

export function isPublicKeyText(text: string): boolean {
  return decodePublicKey(text) !== undefined;
}

export const MQTT_URL_PROTOCOLS: readonly string[] = ['mqtt:', 'mqtts:', 'ws:', 'wss:'];

/** True for `mqtt://`, `mqtts://`, `ws://` or `wss://` URLs with a host. */
export function isMqttUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not a URL at all: the schema reports it with the offending value.
    return false;
  }
  return MQTT_URL_PROTOCOLS.includes(url.protocol) && url.hostname.length > 0;
}
