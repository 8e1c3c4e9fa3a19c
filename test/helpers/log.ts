import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from 'pino';

/** A logger whose JSON lines are kept in memory, for asserting on what was logged. */
export function memoryLogger(level: pino.LevelWithSilent = 'debug'): { log: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = pino({ level }, stream);
  const text = (): string => chunks.join('');
  return {
    log,
    text,
    lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
