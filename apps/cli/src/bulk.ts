import { progress } from './progress';

/** What `inOrder` did: how many items it took (always a prefix of them), and whether Ctrl-C stopped it. */
export interface BulkRun {
  taken: number;
  interrupted: boolean;
}

/**
 * Calls `fn` on `items` in order, at most `inFlight` calls at once, with a progress bar `label` on a terminal. Ctrl-C
 * (SIGINT) stops it taking new items and lets the calls in flight finish (a second Ctrl-C ends the process). The items
 * taken are a prefix of `items`, so "carry on after the last one taken" loses nothing.
 * @throws the first error `fn` throws, once the calls in flight have ended.
 */
export async function inOrder<T>(label: string, items: T[], inFlight: number, fn: (item: T) => Promise<void>): Promise<BulkRun> {
  const bar = progress(label, items.length);
  let interrupted = false;
  const onInterrupt = () => (interrupted = true);
  process.once('SIGINT', onInterrupt);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && !interrupted && failed === undefined) {
      const item = items[next++];
      await fn(item).then(
        () => bar.tick(),
        (e: unknown) => (failed ??= e),
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onInterrupt);
  }
  if (failed !== undefined) throw failed;
  return { taken: next, interrupted };
}
