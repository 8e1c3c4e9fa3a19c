import type { SqliteDatabase } from './sqlite.js';

/** `PRAGMA application_id` of an account database: "PtlA". */
export const ACCOUNT_DB_APPLICATION_ID = 0x50746c41;

/**
 * Schema migrations, in order: entry i takes `user_version` i to i + 1.
 * Never edit a released step; append a new one.
 */
const MIGRATIONS: readonly string[] = [
  // 0 -> 1: accounts and buddy lists.
  `
  CREATE TABLE accounts (
    name           TEXT    NOT NULL PRIMARY KEY,
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    last_supernode TEXT,
    last_device_id TEXT
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE buddies (
    owner    TEXT    NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    buddy    TEXT    NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (owner, buddy)
  ) STRICT, WITHOUT ROWID;

  CREATE INDEX buddies_by_buddy ON buddies (buddy);
  `,
];

/** The schema version this code writes. */
export const ACCOUNT_DB_VERSION = MIGRATIONS.length;

/**
 * Bring the database from `from` to {@link ACCOUNT_DB_VERSION}, each step in
 * its own transaction together with the new `user_version`, so that a crash
 * leaves the file at one version or the next, never in between.
 */
export function migrateAccountDb(db: SqliteDatabase, from: number): void {
  for (let version = from; version < MIGRATIONS.length; version++) {
    const step = MIGRATIONS[version] ?? '';
    db.transaction(() => {
      db.exec(step);
      db.pragma(`application_id = ${ACCOUNT_DB_APPLICATION_ID}`);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
