/**
 * Walking the zod schema: what kind of value lives at a path. Used to merge
 * layers (objects merge, lists and maps replace), to coerce environment
 * variables and YAML scalars, and to name the known keys in an error.
 */
import { z } from 'zod';

export type ConfigPath = readonly (string | number)[];

export type ValueKind = 'object' | 'record' | 'array' | 'number' | 'boolean' | 'string' | 'other';

/** Strip default/prefault/optional/nullable/readonly wrappers. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    if (
      current instanceof z.ZodDefault ||
      current instanceof z.ZodPrefault ||
      current instanceof z.ZodOptional ||
      current instanceof z.ZodNullable ||
      current instanceof z.ZodReadonly
    ) {
      current = current.unwrap() as z.ZodType;
    } else {
      return current;
    }
  }
}

export function kindOf(schema: z.ZodType | undefined): ValueKind {
  if (schema === undefined) return 'other';
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return 'object';
  if (inner instanceof z.ZodRecord) return 'record';
  if (inner instanceof z.ZodArray) return 'array';
  if (inner instanceof z.ZodNumber) return 'number';
  if (inner instanceof z.ZodBoolean) return 'boolean';
  if (inner instanceof z.ZodString || inner instanceof z.ZodEnum) return 'string';
  if (inner instanceof z.ZodLiteral) {
    const values = [...inner.values];
    if (values.every((v) => typeof v === 'number')) return 'number';
    if (values.every((v) => typeof v === 'boolean')) return 'boolean';
    if (values.every((v) => typeof v === 'string')) return 'string';
  }
  return 'other';
}

/** The schema of `key` inside `schema` (object member, record value, list element). */
export function childSchema(schema: z.ZodType | undefined, key: string | number): z.ZodType | undefined {
  if (schema === undefined) return undefined;
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    const shape = inner.shape as Record<string, z.ZodType>;
    return typeof key === 'string' && Object.hasOwn(shape, key) ? shape[key] : undefined;
  }
  if (inner instanceof z.ZodRecord) return inner.valueType as z.ZodType;
  if (inner instanceof z.ZodArray) return typeof key === 'number' ? (inner.element as z.ZodType) : undefined;
  return undefined;
}

export function schemaAt(schema: z.ZodType, path: ConfigPath): z.ZodType | undefined {
  let current: z.ZodType | undefined = schema;
  for (const key of path) current = childSchema(current, key);
  return current;
}

/** Keys of the strict object at `schema`, or undefined when it is not an object. */
export function objectKeys(schema: z.ZodType | undefined): string[] | undefined {
  if (schema === undefined) return undefined;
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Value at `path` inside plain data, or undefined. */
export function getAt(data: unknown, path: ConfigPath): unknown {
  let current: unknown = data;
  for (const key of path) {
    if (Array.isArray(current) && typeof key === 'number') current = current[key];
    else if (isPlainObject(current) && Object.hasOwn(current, String(key))) current = current[String(key)];
    else return undefined;
  }
  return current;
}

/** Set `value` at `path`, creating plain objects on the way. */
export function setAt(data: Record<string, unknown>, path: ConfigPath, value: unknown): void {
  let current: Record<string, unknown> = data;
  path.forEach((key, i) => {
    const name = String(key);
    if (i === path.length - 1) {
      current[name] = value;
      return;
    }
    const next = current[name];
    if (!isPlainObject(next)) current[name] = {};
    current = current[name] as Record<string, unknown>;
  });
}

/**
 * Merge `over` onto `base`: objects of the schema merge key by key; lists,
 * maps (records) and scalars in `over` replace those in `base`.
 */
export function mergeLayer(base: unknown, over: unknown, schema: z.ZodType | undefined): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(over) || !isPlainObject(base) || kindOf(schema) === 'record') return over;
  if (kindOf(schema) !== 'object') return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = mergeLayer(base[key], value, childSchema(schema, key));
  }
  return out;
}

/** Dotted leaf paths present in `data` (lists and maps count as leaves). */
export function leafPaths(data: unknown, schema: z.ZodType | undefined, prefix: ConfigPath = []): string[] {
  if (isPlainObject(data) && (prefix.length === 0 || kindOf(schema) === 'object')) {
    return Object.entries(data).flatMap(([key, value]) =>
      value === undefined ? [] : leafPaths(value, childSchema(schema, key), [...prefix, key]),
    );
  }
  return [formatPath(prefix)];
}

/** `network.bootstrap[1]`, `phone.extensions.100`, `log.levels["my comp"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}
