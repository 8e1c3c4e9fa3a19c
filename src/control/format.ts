/**
 * Human rendering of control results as `label: value` lines, for
 * `partyline ctl` and the terminal UI. Known fields get a formatter; any
 * other field is printed generically, so a node that reports more than this
 * printer knows still prints everything and never breaks it.
 */
import { isPlainObject } from '../config/introspect.js';

/** Render a known field; return undefined when the value is not the expected shape (it is then printed generically). */
export type FieldFormatter = (value: unknown) => string | undefined;

export interface FieldSpec {
  key: string;
  label: string;
  format?: FieldFormatter;
}

const MAX_DEPTH = 4;

/** One line for a scalar or a short list; undefined for values that need several lines. */
export function inlineValue(value: unknown): string | undefined {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return 'none';
    const items = value.map(inlineValue);
    if (items.every((item): item is string => item !== undefined && !item.includes('\n'))) {
      const text = items.join(', ');
      if (text.length <= 100) return text;
    }
    return undefined;
  }
  if (isPlainObject(value) && Object.keys(value).length === 0) return 'none';
  return undefined;
}

/** `key=value` pairs of an object's scalar fields, for appending to a one-line summary. */
export function inlineExtras(value: Record<string, unknown>, known: readonly string[]): string {
  const parts: string[] = [];
  for (const [key, inner] of Object.entries(value)) {
    if (known.includes(key) || inner === undefined) continue;
    const text = inlineValue(inner);
    parts.push(`${key}=${text ?? JSON.stringify(inner)}`);
  }
  return parts.length > 0 ? `, ${parts.join(', ')}` : '';
}

function genericLines(label: string, value: unknown, indent: string, width: number, depth: number): string[] {
  const inline = inlineValue(value);
  if (inline !== undefined) return [`${indent}${`${label}:`.padEnd(width + 1)} ${inline}`];
  if (depth >= MAX_DEPTH) return [`${indent}${`${label}:`.padEnd(width + 1)} ${JSON.stringify(value)}`];
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((item, i) => [`[${i}]`, item])
    : isPlainObject(value)
      ? Object.entries(value).filter(([, inner]) => inner !== undefined)
      : [['value', String(value)]];
  const innerWidth = Math.max(0, ...entries.map(([key]) => key.length));
  return [`${indent}${label}:`, ...entries.flatMap(([key, inner]) => genericLines(key, inner, `${indent}  `, innerWidth, depth + 1))];
}

/** Any value, as indented `label: value` lines (objects nest, short lists go on one line). */
export function formatGeneric(label: string, value: unknown, width = label.length): string[] {
  return genericLines(label, value, '', width, 0);
}

/**
 * `label: value` lines: the known fields first, in the order given, then
 * every other field of `value` generically under its own key. A value that
 * is not an object is printed generically as a whole.
 */
export function formatFields(value: unknown, fields: readonly FieldSpec[]): string {
  if (!isPlainObject(value)) return `${formatGeneric('result', value).join('\n')}\n`;
  const knownKeys = new Set(fields.map((f) => f.key));
  const rows: Array<{ label: string; value: unknown; text: string | undefined }> = [];
  for (const field of fields) {
    if (!Object.hasOwn(value, field.key) || value[field.key] === undefined) continue;
    const inner = value[field.key];
    rows.push({ label: field.label, value: inner, text: field.format?.(inner) });
  }
  for (const [key, inner] of Object.entries(value)) {
    if (knownKeys.has(key) || inner === undefined) continue;
    rows.push({ label: key, value: inner, text: undefined });
  }
  const width = Math.max(0, ...rows.map((row) => row.label.length));
  const lines = rows.flatMap((row) =>
    row.text !== undefined ? [`${`${row.label}:`.padEnd(width + 1)} ${row.text}`] : formatGeneric(row.label, row.value, width),
  );
  return lines.length > 0 ? `${lines.join('\n')}\n` : '(empty)\n';
}

/** `45s`, `3m 07s`, `2h 03m 07s`, `4d 2h 03m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${hours}h ${two(minutes)}m`;
  if (hours > 0) return `${hours}h ${two(minutes)}m ${two(secs)}s`;
  if (minutes > 0) return `${minutes}m ${two(secs)}s`;
  return `${secs}s`;
}
