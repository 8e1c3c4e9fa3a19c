/**
 * CRC-32 as in ISO 3309 / ITU-T V.42 / zlib (reflected polynomial
 * 0xEDB88320, initial value and final XOR 0xFFFFFFFF) — the checksum STUN's
 * FINGERPRINT uses (RFC 8489 §14.7). Table-driven, one byte at a time:
 * `zlib.crc32` only exists from Node 22.2, and we support Node 20.
 */
const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `data`, as an unsigned 32-bit integer. */
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
