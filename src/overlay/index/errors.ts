import { PartylineError } from '../../errors.js';

/**
 * A location record was refused. Stable codes:
 *
 * - `ERR_RECORD_MALFORMED`: wrong shape (unknown field, bad type, too long ...).
 * - `ERR_RECORD_CREDENTIAL`: the credential does not verify with the login
 *   server key, is for another network or another user or device, or was not
 *   valid at the record's `issued` time (`cause` is the CredentialError).
 * - `ERR_RECORD_SIGNATURE`: the record's signature does not verify with the
 *   device key certified by the credential.
 * - `ERR_RECORD_NOT_YET_VALID`: `issued` lies in the future (beyond clock skew).
 * - `ERR_RECORD_EXPIRED`: `issued` is more than the record lifetime (72 h) ago.
 * - `ERR_RECORD_REPLAY`: the store holds this device's entry with a `seq` at
 *   least as high (and different content).
 * - `ERR_RECORD_STORE_FULL`: the store's per-user or total limit is reached.
 */
export class RecordError extends PartylineError {
  constructor(code: `ERR_RECORD_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An index message or id is malformed: `ERR_INDEX_ID`, `ERR_INDEX_MESSAGE`. */
export class IndexError extends PartylineError {
  constructor(code: `ERR_INDEX_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
