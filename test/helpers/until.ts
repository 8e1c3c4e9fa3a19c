/**
 * Poll `probe` until it returns a truthy value (which is returned), or fail
 * after `timeoutMs` naming what was awaited and the last error the probe threw.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 8000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}
