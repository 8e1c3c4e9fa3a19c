import { createRequire } from 'node:module';

/**
 * The narrow slice of better-sqlite3 the account store uses, typed here
 * because the project carries no `@types/better-sqlite3`. better-sqlite3 is
 * a CommonJS module, loaded with `createRequire`.
 */
export interface SqliteRunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface SqliteStatement {
  run(...params: unknown[]): SqliteRunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): SqliteDatabase;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): SqliteDatabase;
}

export interface SqliteOpenOptions {
  readonly?: boolean;
  fileMustExist?: boolean;
  /** How long a statement waits for another connection's lock, in ms. */
  timeout?: number;
}

type SqliteConstructor = new (filename: string, options?: SqliteOpenOptions) => SqliteDatabase;

const require = createRequire(import.meta.url);

/** Open (or create) an SQLite database file. */
export function openSqlite(filename: string, options: SqliteOpenOptions = {}): SqliteDatabase {
  const Database = require('better-sqlite3') as SqliteConstructor;
  return new Database(filename, options);
}

/** The SQLite result code (`SQLITE_NOTADB`, …) of a better-sqlite3 error, if it is one. */
export function sqliteErrorCode(err: unknown): string | undefined {
  if (err instanceof Error && err.name === 'SqliteError') {
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
