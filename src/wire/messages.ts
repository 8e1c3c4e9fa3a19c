import type { z } from 'zod';

/**
 * Message definitions. Each feature declares the messages it speaks next to
 * its code (`overlay/messages.ts`, `login/messages.ts` ...) with a zod schema
 * for every body: every field of every message is validated on arrival.
 */
export interface RequestDef<Req, Res> {
  kind: 'request';
  type: string;
  request: z.ZodType<Req>;
  response: z.ZodType<Res>;
}

export interface NoticeDef<Body> {
  kind: 'notice';
  type: string;
  body: z.ZodType<Body>;
}

export function defineRequest<Req, Res>(type: string, request: z.ZodType<Req>, response: z.ZodType<Res>): RequestDef<Req, Res> {
  return { kind: 'request', type, request, response };
}

export function defineNotice<Body>(type: string, body: z.ZodType<Body>): NoticeDef<Body> {
  return { kind: 'notice', type, body };
}

/** zod issues as `where.path: message` lines. */
export function formatIssues(error: z.ZodError, where: string): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    return `${where}${path}: ${issue.message}`;
  });
}
