/**
 * Typed errors. Every condition has its own class with a stable `code`
 * (STYLE.md 9): callers and tests match on `code`, never on message text.
 */
export class PartylineError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A configuration file, overlay or environment variable is invalid. */
export class ConfigError extends PartylineError {
  readonly issues: readonly string[];

  constructor(message: string, issues: readonly string[] = [], options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options);
    this.issues = issues;
  }
}

/** A Noise handshake or transport message failed (bad MAC, wrong state, exhausted nonce ...). */
export class NoiseError extends PartylineError {
  constructor(code: `ERR_NOISE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A frame or message on the wire is malformed (bad length, unknown field, wrong type ...). */
export class WireError extends PartylineError {
  constructor(code: `ERR_WIRE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A credential does not verify (expired, forged, wrong key binding ...). */
export class CredentialError extends PartylineError {
  constructor(code: `ERR_CREDENTIAL_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A request timed out or was aborted. */
export class TimeoutError extends PartylineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TIMEOUT', message, options);
  }
}

export class AbortedError extends PartylineError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The login server's account store, password hashing or the `partyline user`
 * command failed: `ERR_ACCOUNT_EXISTS`, `ERR_ACCOUNT_UNKNOWN`,
 * `ERR_ACCOUNT_NAME_INVALID`, `ERR_ACCOUNT_PASSWORD_INVALID`, `ERR_ACCOUNT_HASH_FORMAT`,
 * `ERR_ACCOUNT_LOGIN_INVALID`, `ERR_ACCOUNT_BUDDY_SELF`, `ERR_ACCOUNT_DB_CORRUPT`,
 * `ERR_ACCOUNT_DB_UNREADABLE`, `ERR_ACCOUNT_DB_FOREIGN`, `ERR_ACCOUNT_DB_VERSION`,
 * `ERR_ACCOUNT_DB_MISSING`, `ERR_ACCOUNT_CLOSED`, `ERR_ACCOUNT_INPUT`.
 */
export class AccountError extends PartylineError {
  constructor(code: `ERR_ACCOUNT_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
