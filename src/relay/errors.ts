import { PartylineError } from '../errors.js';

/**
 * A relay request was refused or a relay message is malformed. Stable codes:
 *
 * - allocation (answers to `relay.allocate` / `relay.bind`):
 *   `ERR_RELAY_NOT_AUTHENTICATED` (the link has not attached with a valid
 *   credential, or a relay-only link's handshake credential does not
 *   verify), `ERR_RELAY_QUOTA` (the user holds `perUserMax` allocations),
 *   `ERR_RELAY_FULL` (the supernode carries `maxAllocations`),
 *   `ERR_RELAY_UNAVAILABLE` (not running, or no address to hand out),
 *   `ERR_RELAY_UNAUTHORIZED` (unknown leg username or wrong leg key);
 * - client side: `ERR_RELAY_BIND_REFUSED` (a ChannelBind error response other
 *   than 401), `ERR_RELAY_BAD_RESPONSE` (a response that fails its integrity
 *   check or lacks what it must carry), `ERR_RELAY_LEG_CLOSED`;
 * - codecs: `ERR_RELAY_CHANNEL_DATA` (malformed or unencodable ChannelData),
 *   `ERR_RELAY_CHANNEL_BIND` (malformed ChannelBind).
 */
export class RelayError extends PartylineError {
  constructor(code: `ERR_RELAY_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
