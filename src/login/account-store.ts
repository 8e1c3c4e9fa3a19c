import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AccountError, errorMessage } from '../errors.js';
import { HostPortError, normalizeHostPort } from '../util/host-port.js';
import {
  checkNewPassword, DEFAULT_SCRYPT_PARAMS, formatPasswordHash, HASH_BYTES, hashPassword, needsRehash, SALT_BYTES,
  verifyPassword as verifyPasswordHash,
} from './password.js';
import type { ScryptParams } from './password.js';
import { openSqlite, sqliteErrorCode } from './sqlite.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite.js';
import { isValidUserName, parseUserName } from './user-name.js';
import { ACCOUNT_DB_APPLICATION_ID, ACCOUNT_DB_VERSION, migrateAccountDb } from './account-schema.js';

/** The file name of the account database inside the login server's data directory. */
export const ACCOUNT_DB_FILE = 'accounts.db';

/** What the store tells about an account — never the password hash. */
export interface AccountInfo {
  name: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms of the last successful login, or null when never. */
  lastLoginAt: number | null;
  /** `host:port` of the supernode the user last logged in through, or null. */
  lastSupernode: string | null;
  lastDeviceId: string | null;
}

export interface BuddyEntry {
  name: string;
  /** Epoch ms. */
  addedAt: number;
}

export interface LoginRecord {
  /** Epoch ms; default: the store's clock. */
  at?: number;
  /** `host:port` (IPv6 as `[addr]:port`) of the supernode the login came through. */
  supernode?: string;
  deviceId?: string;
}

export interface AccountStoreOptions {
  /** The clock for created/added timestamps (epoch ms). Default `Date.now`. */
  now?: () => number;
  /** scrypt parameters for new hashes; older hashes are upgraded at the next good login. */
  scrypt?: ScryptParams;
  /** Create the directory and database when missing (default true); false fails with `ERR_ACCOUNT_DB_MISSING`. */
  create?: boolean;
}

interface AccountRow {
  name: string;
  created_at: number;
  last_login_at: number | null;
  last_supernode: string | null;
  last_device_id: string | null;
}

const INFO_COLUMNS = 'name, created_at, last_login_at, last_supernode, last_device_id';
const MAX_DEVICE_ID_LENGTH = 256;

/**
 * The login server's accounts: one SQLite file, `<dir>/accounts.db`, mode 0600.
 *
 * - `journal_mode=WAL`, so that `partyline user …` can write while the login
 *   server reads; a 5 s busy timeout covers two writers.
 * - `synchronous=FULL`: every commit is fsynced before it returns. With WAL,
 *   NORMAL keeps the file consistent but may lose the last commits on a power
 *   cut — and a password change or deletion that silently comes back after
 *   a power cut re-opens an account the operator closed. Writes are rare
 *   (admin commands, one row per login), so the fsync costs nothing that matters.
 * - The schema is versioned with `PRAGMA user_version` and migrated at open;
 *   `PRAGMA application_id` marks the file as ours.
 * - A file that is not a database, is corrupt, belongs to something else or
 *   was written by a newer version is never touched: open fails with a typed error.
 *
 * User names are normalised ({@link parseUserName}) on the way in.
 */
export class AccountStore {
  readonly path: string;
  #db: SqliteDatabase | undefined;
  readonly #now: () => number;
  readonly #params: ScryptParams;
  /** A hash of nothing anybody knows, checked for unknown users so they take as long as known ones. */
  readonly #dummyHash: string;
  readonly #statements = new Map<string, SqliteStatement>();

  private constructor(path: string, db: SqliteDatabase, options: AccountStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#params = options.scrypt ?? DEFAULT_SCRYPT_PARAMS;
    this.#dummyHash = formatPasswordHash({ params: this.#params, salt: randomBytes(SALT_BYTES), hash: randomBytes(HASH_BYTES) });
  }

  /**
   * Open `<dir>/accounts.db`, creating the directory (0700) and the file (0600) when missing.
   * @throws AccountError `ERR_ACCOUNT_DB_CORRUPT`, `ERR_ACCOUNT_DB_UNREADABLE`, `ERR_ACCOUNT_DB_FOREIGN`,
   *   `ERR_ACCOUNT_DB_VERSION`, `ERR_ACCOUNT_DB_MISSING` (only with `create: false`)
   */
  static open(dir: string, options: AccountStoreOptions = {}): AccountStore {
    const path = join(dir, ACCOUNT_DB_FILE);
    prepareFile(dir, path, options.create ?? true);
    let db: SqliteDatabase;
    try {
      db = openSqlite(path, { timeout: 5000 });
    } catch (err) {
      throw dbError(path, err);
    }
    try {
      configure(db, path);
    } catch (err) {
      db.close();
      throw err instanceof AccountError ? err : dbError(path, err);
    }
    return new AccountStore(path, db, options);
  }

  /**
   * Add an account.
   * @throws AccountError `ERR_ACCOUNT_NAME_INVALID`, `ERR_ACCOUNT_PASSWORD_INVALID` (shorter than 8 characters, …), `ERR_ACCOUNT_EXISTS`
   */
  async addUser(name: string, password: string): Promise<AccountInfo> {
    const user = parseUserName(name);
    checkNewPassword(password);
    if (this.#find(user) !== undefined) throw exists(user);
    const hash = await hashPassword(password, { params: this.#params });
    const createdAt = this.#now();
    try {
      this.#stmt('INSERT INTO accounts (name, password_hash, created_at) VALUES (?, ?, ?)').run(user, hash, createdAt);
    } catch (err) {
      if (sqliteErrorCode(err)?.startsWith('SQLITE_CONSTRAINT') === true) throw exists(user);
      throw err;
    }
    return { name: user, createdAt, lastLoginAt: null, lastSupernode: null, lastDeviceId: null };
  }

  /**
   * Delete an account, its buddy list, and its place on other users' buddy lists
   * (so that whoever registers the name later inherits nobody's trust).
   * @throws AccountError `ERR_ACCOUNT_UNKNOWN`
   */
  deleteUser(name: string): void {
    const user = parseUserName(name);
    const { changes } = this.#stmt('DELETE FROM accounts WHERE name = ?').run(user);
    if (changes === 0) throw unknown(user);
  }

  /**
   * Replace an account's password.
   * @throws AccountError `ERR_ACCOUNT_UNKNOWN`, `ERR_ACCOUNT_PASSWORD_INVALID`
   */
  async setPassword(name: string, password: string): Promise<void> {
    const user = parseUserName(name);
    checkNewPassword(password);
    if (this.#find(user) === undefined) throw unknown(user);
    const hash = await hashPassword(password, { params: this.#params });
    const { changes } = this.#stmt('UPDATE accounts SET password_hash = ? WHERE name = ?').run(hash, user);
    if (changes === 0) throw unknown(user);
  }

  /**
   * Check a login. Unknown users, invalid names and wrong passwords all give
   * false after the same scrypt work, so the answer time does not tell
   * whether an account exists. A good password stored with weaker scrypt
   * parameters than the store's is re-hashed.
   * @throws AccountError `ERR_ACCOUNT_HASH_FORMAT` when the stored hash is damaged.
   */
  async verifyPassword(name: string, password: string): Promise<boolean> {
    const user = isValidUserName(name) ? parseUserName(name) : undefined;
    const row = user === undefined
      ? undefined
      : this.#stmt('SELECT password_hash FROM accounts WHERE name = ?').get(user) as { password_hash: string } | undefined;
    const stored = row?.password_hash ?? this.#dummyHash;
    const ok = await verifyPasswordHash(password, stored);
    if (!ok || row === undefined || user === undefined) return false;
    if (needsRehash(stored, this.#params)) await this.#rehash(user, password, stored);
    return true;
  }

  /**
   * Remember a successful login: time, and the supernode and device it came
   * from (a value left out is stored as unknown, not kept from before).
   * @throws AccountError `ERR_ACCOUNT_UNKNOWN`, `ERR_ACCOUNT_LOGIN_INVALID`
   */
  recordLogin(name: string, login: LoginRecord = {}): void {
    const user = parseUserName(name);
    const at = login.at ?? this.#now();
    if (!Number.isSafeInteger(at) || at < 0) throw invalidLogin(`at=${String(at)}, expected epoch milliseconds`);
    const supernode = login.supernode === undefined ? null : checkSupernode(login.supernode);
    const deviceId = login.deviceId === undefined ? null : checkDeviceId(login.deviceId);
    const { changes } = this.#stmt('UPDATE accounts SET last_login_at = ?, last_supernode = ?, last_device_id = ? WHERE name = ?')
      .run(at, supernode, deviceId, user);
    if (changes === 0) throw unknown(user);
  }

  /** The account, or undefined when there is none. @throws AccountError `ERR_ACCOUNT_NAME_INVALID` */
  getUser(name: string): AccountInfo | undefined {
    const row = this.#find(parseUserName(name));
    return row === undefined ? undefined : toInfo(row);
  }

  /** Every account, sorted by name. */
  listUsers(): AccountInfo[] {
    return (this.#stmt(`SELECT ${INFO_COLUMNS} FROM accounts ORDER BY name`).all() as AccountRow[]).map(toInfo);
  }

  /** `owner`'s buddies, sorted by name. @throws AccountError `ERR_ACCOUNT_UNKNOWN` */
  listBuddies(owner: string): BuddyEntry[] {
    const user = this.#existing(owner);
    const rows = this.#stmt('SELECT buddy, added_at FROM buddies WHERE owner = ? ORDER BY buddy').all(user) as { buddy: string; added_at: number }[];
    return rows.map((r) => ({ name: r.buddy, addedAt: r.added_at }));
  }

  /**
   * Put `buddy` on `owner`'s list; true when added, false when already there.
   * @throws AccountError `ERR_ACCOUNT_UNKNOWN` (either account), `ERR_ACCOUNT_BUDDY_SELF`
   */
  addBuddy(owner: string, buddy: string): boolean {
    const user = this.#existing(owner);
    const other = this.#existing(buddy);
    if (user === other) throw new AccountError('ERR_ACCOUNT_BUDDY_SELF', `user "${user}": cannot be their own buddy`);
    const { changes } = this.#stmt('INSERT OR IGNORE INTO buddies (owner, buddy, added_at) VALUES (?, ?, ?)').run(user, other, this.#now());
    return changes > 0;
  }

  /** Take `buddy` off `owner`'s list; true when removed, false when not there. @throws AccountError `ERR_ACCOUNT_UNKNOWN` */
  removeBuddy(owner: string, buddy: string): boolean {
    const user = this.#existing(owner);
    const { changes } = this.#stmt('DELETE FROM buddies WHERE owner = ? AND buddy = ?').run(user, parseUserName(buddy));
    return changes > 0;
  }

  /** Close the database. Closing twice is harmless; any other call afterwards fails with `ERR_ACCOUNT_CLOSED`. */
  close(): void {
    const db = this.#db;
    this.#db = undefined;
    this.#statements.clear();
    if (db?.open === true) db.close();
  }

  async #rehash(user: string, password: string, old: string): Promise<void> {
    const hash = await hashPassword(password, { params: this.#params });
    if (this.#db === undefined) return;
    // Only if nobody changed the password meanwhile.
    this.#stmt('UPDATE accounts SET password_hash = ? WHERE name = ? AND password_hash = ?').run(hash, user, old);
  }

  #existing(name: string): string {
    const user = parseUserName(name);
    if (this.#find(user) === undefined) throw unknown(user);
    return user;
  }

  #find(user: string): AccountRow | undefined {
    return this.#stmt(`SELECT ${INFO_COLUMNS} FROM accounts WHERE name = ?`).get(user) as AccountRow | undefined;
  }

  #stmt(sql: string): SqliteStatement {
    const db = this.#db;
    if (db === undefined) throw new AccountError('ERR_ACCOUNT_CLOSED', `account store ${this.path}: closed`);
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

/** Create the directory (0700) and an empty database file (0600) if missing; tighten an existing file to 0600. */
function prepareFile(dir: string, path: string, create: boolean): void {
  if (!create && !existsSync(path)) {
    throw new AccountError('ERR_ACCOUNT_DB_MISSING', `account database ${path}: does not exist`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stat = statSync(path);
      if (!stat.isFile()) throw new Error('not a regular file');
      if ((stat.mode & 0o077) !== 0) chmodSync(path, 0o600);
    }
  } catch (err) {
    throw new AccountError('ERR_ACCOUNT_DB_UNREADABLE', `account database ${path}: cannot open: ${errorMessage(err)}`, { cause: err });
  }
}

function configure(db: SqliteDatabase, path: string): void {
  // The first statement reads the header: a file that is not a database fails here, before anything is written.
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
  if (appId !== ACCOUNT_DB_APPLICATION_ID && (appId !== 0 || version !== 0 || tables !== 0)) {
    throw new AccountError('ERR_ACCOUNT_DB_FOREIGN', `account database ${path}: not a partyline account database (application_id ${appId}); refusing to change it`);
  }
  if (version > ACCOUNT_DB_VERSION) {
    throw new AccountError('ERR_ACCOUNT_DB_VERSION', `account database ${path}: schema version ${version} was written by a newer partyline (this one knows up to ${ACCOUNT_DB_VERSION})`);
  }
  const check = db.pragma('quick_check', { simple: true });
  if (check !== 'ok') {
    throw new AccountError('ERR_ACCOUNT_DB_CORRUPT', `account database ${path}: integrity check failed: ${String(check)}`);
  }
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new AccountError('ERR_ACCOUNT_DB_UNREADABLE', `account database ${path}: cannot switch to WAL (journal_mode ${String(mode)})`);
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  migrateAccountDb(db, version);
}

function dbError(path: string, err: unknown): AccountError {
  const code = sqliteErrorCode(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code?.startsWith('SQLITE_CORRUPT_') === true) {
    return new AccountError('ERR_ACCOUNT_DB_CORRUPT', `account database ${path}: not a valid SQLite database (${errorMessage(err)}); left untouched — restore it from a backup or move it away`, { cause: err });
  }
  return new AccountError('ERR_ACCOUNT_DB_UNREADABLE', `account database ${path}: cannot open: ${errorMessage(err)}`, { cause: err });
}

function toInfo(row: AccountRow): AccountInfo {
  return {
    name: row.name,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
    lastSupernode: row.last_supernode,
    lastDeviceId: row.last_device_id,
  };
}

function exists(user: string): AccountError {
  return new AccountError('ERR_ACCOUNT_EXISTS', `user "${user}": already exists`);
}

function unknown(user: string): AccountError {
  return new AccountError('ERR_ACCOUNT_UNKNOWN', `user "${user}": no such user`);
}

function invalidLogin(detail: string): AccountError {
  return new AccountError('ERR_ACCOUNT_LOGIN_INVALID', `login record: ${detail}`);
}

/** `host:port` or `[ipv6]:port`, stored in the canonical spelling the host cache uses. */
function checkSupernode(value: string): string {
  try {
    return normalizeHostPort(value);
  } catch (err) {
    const reason = err instanceof HostPortError ? err.reason : errorMessage(err);
    throw invalidLogin(`supernode ${JSON.stringify(value.slice(0, 300))}: ${reason}`);
  }
}

function checkDeviceId(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (value.length === 0 || value.length > MAX_DEVICE_ID_LENGTH || /[\u0000-\u0020\u007f]/.test(value)) {
    throw invalidLogin(`device id of length ${value.length}, expected 1 to ${MAX_DEVICE_ID_LENGTH} printable characters`);
  }
  return value;
}
