/**
 * Turning zod issues into operator-readable problems of the form
 * `path: expected X, got Y`, where Y echoes what the configuration held
 * (secrets shown as ***).
 */
import type { z } from 'zod';
import { formatPath, getAt, objectKeys, schemaAt } from './introspect.js';
import type { ConfigPath } from './introspect.js';
import { SECRET_CONFIG_PATHS } from './schema.js';

export interface ConfigProblem {
  /** Where the problem is; for an unknown key, the key itself. */
  path: (string | number)[];
  /** Whether the problem is the key at `path` (unknown or malformed key) rather than its value. */
  at: 'key' | 'value';
  /** `expected X, got Y` */
  text: string;
}

type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a map of settings',
  record: 'a map',
  array: 'a list',
};

/** Render a received value: JSON for scalars, a word for containers. */
export function formatReceived(value: unknown, path: ConfigPath = []): string {
  if (value === undefined) return 'nothing';
  if (SECRET_CONFIG_PATHS.has(formatPath(path.filter((k) => typeof k === 'string')))) return '***';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object' && value !== null) return 'a map';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function formatValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The "expected ..." half of an issue. */
function expectation(issue: Issue): string {
  // A record's own error text would hide what is wrong with the key.
  if (issue.code === 'invalid_key' && issue.issues[0]) return expectation(issue.issues[0]);
  if (issue.message.startsWith('expected ')) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${formatValue(issue.values[0])}`
        : `expected one of ${issue.values.map(formatValue).join(' | ')}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      if (issue.origin === 'string') {
        if (issue.code === 'too_small' && Number(bound) === 1) return 'expected a non-empty string';
        return `expected a string of ${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} characters`;
      }
      if (issue.origin === 'array') return `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} items`;
      return `expected a number ${op} ${String(bound)}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern ? `expected text matching ${issue.pattern}` : `expected a valid ${issue.format}`;
    case 'invalid_key':
      return 'expected a valid key';
    case 'invalid_union': {
      const values = issue.errors.flat().flatMap((inner) => (inner.code === 'invalid_value' ? inner.values : []));
      return values.length > 0 ? `expected one of ${values.map(formatValue).join(' | ')}` : `expected ${issue.message}`;
    }
    default:
      return issue.message.startsWith('expected') ? issue.message : `expected ${issue.message}`;
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/**
 * Explain one zod issue against the data that was validated. An issue about
 * several unknown keys becomes one problem per key.
 */
export function explainIssue(issue: Issue, input: unknown, schema: z.ZodType): ConfigProblem[] {
  const path = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
  if (issue.code === 'unrecognized_keys') {
    const known = objectKeys(schemaAt(schema, path)) ?? [];
    return issue.keys.map((key) => {
      const hint = closest(key, known);
      const suggestion = hint === undefined ? '' : ` (did you mean ${JSON.stringify(hint)}?)`;
      return {
        path: [...path, key],
        at: 'key',
        text: `expected one of the keys ${known.join(' | ')}, got unknown key ${JSON.stringify(key)}${suggestion}`,
      };
    });
  }
  if (issue.code === 'invalid_key') {
    const key = path[path.length - 1];
    return [{ path, at: 'key', text: `${expectation(issue)}, got ${formatValue(key)}` }];
  }
  return [{ path, at: 'value', text: `${expectation(issue)}, got ${formatReceived(getAt(input, path), path)}` }];
}

/** Plain `path: expected X, got Y` lines for data validated without a source. */
export function formatProblem(problem: ConfigProblem): string {
  return problem.path.length === 0 ? problem.text : `${formatPath(problem.path)}: ${problem.text}`;
}
