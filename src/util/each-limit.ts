/** Run `fn` over `items`, at most `limit` at once; never rejects: a failure goes to `onError` and the rest carry on. */
export async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>, onError: (err: unknown) => void): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch(onError);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
}
