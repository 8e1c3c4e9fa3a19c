/**
 * Where state lives, and resolving the path settings that default to
 * places inside it.
 *
 * Default state directory, first that applies:
 *   1. $STATE_DIRECTORY  — systemd sets it from `StateDirectory=partyline`
 *      (first entry when it lists several), so the packaged unit gets
 *      /var/lib/partyline whatever user it runs as;
 *   2. /var/lib/partyline when running as root;
 *   3. $XDG_STATE_HOME/partyline, else ~/.local/state/partyline — so
 *      `npm start` on a fresh development machine works without root.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Config, ParsedConfig } from './schema.js';

export const SYSTEM_STATE_DIR = '/var/lib/partyline';
export const CONTROL_SOCKET_NAME = 'control.sock';

export interface PathContext {
  env: NodeJS.ProcessEnv;
  /** Base for relative paths. */
  cwd: string;
  /** Whether the process runs as root (uid 0). */
  isRoot: boolean;
}

export function defaultStateDir(env: NodeJS.ProcessEnv, isRoot: boolean): string {
  const systemd = env.STATE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  if (isRoot) return SYSTEM_STATE_DIR;
  const xdg = env.XDG_STATE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'partyline');
  return join(env.HOME || homedir(), '.local', 'state', 'partyline');
}

/** Expand a leading `~` / `~/` and make the path absolute against `cwd`. */
export function resolveUserPath(path: string, ctx: Pick<PathContext, 'env' | 'cwd'>): string {
  if (path === '~' || path.startsWith('~/')) return join(ctx.env.HOME || homedir(), path.slice(1));
  return resolve(ctx.cwd, path);
}

export function resolveStateDir(configured: unknown, ctx: PathContext): string {
  return typeof configured === 'string' && configured !== ''
    ? resolveUserPath(configured, ctx)
    : defaultStateDir(ctx.env, ctx.isRoot);
}

/** Fill in node.stateDir and node.control and make them absolute. */
export function resolveConfigPaths(parsed: ParsedConfig, ctx: PathContext): Config {
  const stateDir = resolveStateDir(parsed.node.stateDir, ctx);
  const control = parsed.node.control === undefined ? join(stateDir, CONTROL_SOCKET_NAME) : resolveUserPath(parsed.node.control, ctx);
  return { ...parsed, node: { ...parsed.node, stateDir, control } };
}
