import { isIPv4, isIPv6 } from 'node:net';

/**
 * A UDP transport address: an IP address (no host names) and a port.
 * IPv6 addresses are written without brackets; an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, as dual-stack sockets report) counts as IPv4.
 */
export interface TransportAddress {
  address: string;
  port: number;
}

export type AddressFamily = 'IPv4' | 'IPv6';

/** The family of an address as STUN encodes it, or undefined when `address` is not an IP address. */
export function addressFamily(address: string): AddressFamily | undefined {
  const bare = stripZone(address);
  if (isIPv4(bare)) return 'IPv4';
  if (!isIPv6(bare)) return undefined;
  return unmapIPv4(bare) === undefined ? 'IPv6' : 'IPv4';
}

/** 4 or 16 bytes for an IP address; undefined when it is not one. IPv4-mapped IPv6 gives 4 bytes. */
export function ipToBytes(address: string): Buffer | undefined {
  const bare = stripZone(address);
  if (isIPv4(bare)) return Buffer.from(bare.split('.').map(Number));
  if (!isIPv6(bare)) return undefined;
  const v4 = unmapIPv4(bare);
  if (v4 !== undefined) return Buffer.from(v4.split('.').map(Number));
  return ipv6Bytes(bare);
}

/** Text for 4 or 16 address bytes: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`IP address of ${bytes.length} bytes, expected 4 or 16`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Canonical text for an IP address (IPv4-mapped IPv6 becomes IPv4; zone ids dropped); undefined when invalid. */
export function canonicalIp(address: string): string | undefined {
  const bytes = ipToBytes(address);
  return bytes === undefined ? undefined : bytesToIp(bytes);
}

/** Same IP address, however spelled. */
export function sameIp(a: string, b: string): boolean {
  const ca = canonicalIp(a);
  return ca !== undefined && ca === canonicalIp(b);
}

/** Same IP address and port. */
export function sameTransportAddress(a: TransportAddress, b: TransportAddress): boolean {
  return a.port === b.port && sameIp(a.address, b.address);
}

/** `192.0.2.1:3478` or `[2001:db8::1]:3478`, for logs and messages. */
export function formatTransportAddress(value: TransportAddress): string {
  return value.address.includes(':') ? `[${value.address}]:${value.port}` : `${value.address}:${value.port}`;
}

/** True for 0.0.0.0 and :: — a socket bound there has no single address to advertise. */
export function isUnspecified(address: string): boolean {
  const bytes = ipToBytes(address);
  return bytes !== undefined && bytes.every((b) => b === 0);
}

function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent < 0 ? address : address.slice(0, percent);
}

/** `a.b.c.d` for an IPv4-mapped IPv6 address (`::ffff:a.b.c.d` or `::ffff:xxxx:xxxx`), else undefined. */
function unmapIPv4(ipv6: string): string | undefined {
  const bytes = ipv6Bytes(ipv6);
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return undefined;
  return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
}

/** 16 bytes of a valid IPv6 address (checked by the caller with `isIPv6`). */
function ipv6Bytes(ipv6: string): Buffer {
  // The WHATWG URL parser writes any valid IPv6 address as hex groups (dotted tails included).
  const hex = new URL(`http://[${ipv6}]/`).hostname.slice(1, -1);
  const [head = '', tail] = hex.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
