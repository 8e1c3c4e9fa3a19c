import type { PartylineError } from '../../src/errors.js';

/** xorshift32: small, fast, reproducible random numbers in [0, 1) for seeded fuzzing. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/**
 * Run `run`: 'ok' when it returns, 'error' when it throws `errorClass`;
 * any other exception fails the fuzz test as an untyped error.
 */
export function expectTyped(run: () => unknown, errorClass: abstract new (...args: never[]) => PartylineError): 'ok' | 'error' {
  try {
    run();
    return 'ok';
  } catch (err) {
    if (!(err instanceof errorClass)) throw new Error(`untyped error: ${String(err)}`, { cause: err });
    return 'error';
  }
}
