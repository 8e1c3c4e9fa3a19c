/**
 * A copy of `bytes` in memory of its own. Small Buffers (Buffer.from,
 * toString→from, subarray of a pooled buffer) share Node's 8 KiB pool slabs:
 * one long-lived 32-byte key keeps a whole slab of handshake garbage alive.
 * Keys and hashes that live as long as a link are copied out with this
 * (measured: ~3 KB per link at 10,000 links, bench/supernode-capacity).
 */
export function unpooled(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}
