/**
 * The environment-variable layer.
 *
 * Mapping: `PARTYLINE_` + path segments joined by `__` (double underscore).
 * Segments match the camelCase keys case-insensitively, and single
 * underscores inside a segment are ignored, so `PARTYLINE_NODE__PORT`,
 * `PARTYLINE_NETWORK__KEEP_ALIVE_S` and `PARTYLINE_network__keepAliveS` all
 * work. Values are coerced by the schema type of the key:
 *   numbers      `5060`
 *   booleans     `true|false|1|0|yes|no|on|off` (any case)
 *   lists        comma-separated, items trimmed: `a:1,b:2`; empty = empty list
 *   maps         `key=value,key=value`: `PARTYLINE_LOG__LEVELS=overlay=debug,nat=trace`
 *   strings      as is (not trimmed)
 * An empty value for a scalar key is ignored (the layers below apply). A
 * variable naming no key is an error, like an unknown key in a file, except
 * the reserved names in RESERVED_ENV_VARS and RESERVED_ENV_PREFIXES.
 */
import type { z } from 'zod';
import { childSchema, formatPath, kindOf, objectKeys, setAt, unwrap } from './introspect.js';
import type { ConfigPath, ValueKind } from './introspect.js';
import { formatReceived } from './issues.js';

export const ENV_PREFIX = 'PARTYLINE_';
/** `PARTYLINE_CONFIG` names the configuration file (same as `--config`). */
export const CONFIG_FILE_ENV = 'PARTYLINE_CONFIG';
/** PARTYLINE_* variables that are not configuration keys. */
export const RESERVED_ENV_VARS: ReadonlySet<string> = new Set([CONFIG_FILE_ENV]);
/** Prefixes of PARTYLINE_* variables that are not configuration keys: the image build's settings (image/README.md). */
export const RESERVED_ENV_PREFIXES: readonly string[] = ['PARTYLINE_IMAGE_'];

export interface EnvOrigin {
  name: string;
  path: (string | number)[];
}

export interface EnvLayer {
  data: Record<string, unknown>;
  origins: EnvOrigin[];
  issues: string[];
}

/** The variable name for a config path: `network.keepAliveS` -> `PARTYLINE_NETWORK__KEEP_ALIVE_S`. */
export function envVarName(path: string | ConfigPath): string {
  const segments = typeof path === 'string' ? path.split('.') : path.map(String);
  return ENV_PREFIX + segments.map((s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__');
}

const normalise = (segment: string): string => segment.replace(/_/g, '').toLowerCase();

export function configFromEnv(env: NodeJS.ProcessEnv, schema: z.ZodType): EnvLayer {
  const layer: EnvLayer = { data: {}, origins: [], issues: [] };
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !RESERVED_ENV_VARS.has(name) && !RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p)))
    .sort();
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined) continue;
    const resolved = resolveName(name, schema);
    if ('issue' in resolved) {
      layer.issues.push(resolved.issue);
      continue;
    }
    const { path, leaf } = resolved;
    const kind = leaf === undefined ? 'other' : kindOf(leaf);
    if (kind === 'object') {
      const example = objectKeys(leaf)?.[0] ?? 'key';
      layer.issues.push(`${name}: ${formatPath(path)}: expected a single setting such as ${envVarName([...path, example])}, got ${formatReceived(raw, path)}`);
      continue;
    }
    if (raw === '' && kind !== 'array' && kind !== 'record') continue;
    const value = coerce(raw, kind, leaf);
    if ('issue' in value) {
      layer.issues.push(`${name}: ${formatPath(path)}: ${value.issue}, got ${formatReceived(raw, path)}`);
      continue;
    }
    setAt(layer.data, path, value.value);
    layer.origins.push({ name, path });
  }
  return layer;
}

type Resolved = { path: string[]; leaf: z.ZodType | undefined } | { issue: string };

function resolveName(name: string, schema: z.ZodType): Resolved {
  const segments = name.slice(ENV_PREFIX.length).split('__');
  if (segments.some((s) => s === '')) {
    return { issue: `${name}: expected PARTYLINE_SECTION__KEY with "__" between non-empty segments, got ${JSON.stringify(name)}` };
  }
  const path: string[] = [];
  let current: z.ZodType | undefined = schema;
  for (const segment of segments) {
    const kind = current === undefined ? 'other' : kindOf(current);
    if (current !== undefined && kind !== 'object') {
      const what = kind === 'record' ? 'a map, set whole as key=value,key=value' : kind === 'array' ? 'a list, set whole as a,b,c' : 'a single setting';
      return { issue: `${name}: ${formatPath(path)}: expected no key below ${formatPath(path)} (${what}), got ${JSON.stringify(segment)}` };
    }
    const key = objectKeys(current)?.find((k) => normalise(k) === normalise(segment));
    const resolvedKey = key ?? segment.toLowerCase();
    path.push(resolvedKey);
    current = childSchema(current, resolvedKey);
  }
  return { path, leaf: current };
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

type Coerced = { value: unknown } | { issue: string };

function coerceScalar(text: string, kind: ValueKind): unknown {
  if (kind === 'number' && NUMBER.test(text.trim())) return Number(text.trim());
  if (kind === 'boolean') {
    const lower = text.trim().toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower)) return false;
  }
  // Anything else stays a string: validation reports it with the variable's name.
  return text;
}

function coerce(text: string, kind: ValueKind, leaf: z.ZodType | undefined): Coerced {
  if (kind === 'array') {
    const inner = leaf === undefined ? undefined : unwrap(leaf);
    const elementKind = kindOf(childSchema(inner, 0));
    const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    return { value: items.map((item) => coerceScalar(item, elementKind)) };
  }
  if (kind === 'record') {
    const valueKind = kindOf(childSchema(leaf, ''));
    const out: Record<string, unknown> = {};
    for (const entry of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) return { issue: `expected "key=value,key=value"` };
      out[entry.slice(0, eq).trim()] = coerceScalar(entry.slice(eq + 1).trim(), valueKind);
    }
    return { value: out };
  }
  return { value: coerceScalar(text, kind) };
}
