/**
 * zod issues of control requests and arguments as `path: expected X, got Y`
 * (the same wording as configuration errors), with the values of secret
 * fields never echoed back.
 */
import type { z } from 'zod';
import { isPlainObject } from '../config/introspect.js';
import { explainIssue, formatProblem } from '../config/issues.js';

/** Argument names whose values are never repeated in an error message. */
const SECRET_NAME = /password|secret|token|credential|privatekey/i;

function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_NAME.test(key) && inner !== undefined ? '***' : redactSecrets(inner, depth + 1);
  }
  return out;
}

/** Every issue of a failed parse, one `path: expected X, got Y` string each. */
export function formatIssues(error: z.ZodError, input: unknown, schema: z.ZodType): string[] {
  const safe = redactSecrets(input);
  return error.issues.flatMap((issue) => explainIssue(issue, safe, schema)).map(formatProblem);
}
