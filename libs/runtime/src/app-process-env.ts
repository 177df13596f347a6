/**
 * The V8 heap limits an app process runs with, as `NODE_OPTIONS`. V8 otherwise lets the heap of a busy process grow
 * far past what it keeps alive: the order app reached 219 MB RSS in `npm run bench`; with these, 110–130 MB per app,
 * for about 5 % fewer sagas/s (more frequent garbage collection). A 4 MB semi-space takes 8 MB off each app's heap, but
 * cost 1–8 % more CPU per saga under load and fewer sagas/s in three pairs (2026-12-06), and a 6 MB one did not lower
 * the order app's RSS after the bench's burst in three runs. The old space holds the live heap (~45 MB at
 * rest) plus what the consumers may hold: at most CONSUMER_MAX_ACK_PENDING × STREAM_MAX_MSG_SIZE per consumer
 * (512 × 64 KiB = 32 MB by default). `--expose-gc` lets an idle app ask V8 for a memory-reducing collection after a
 * burst (`IdleHeapCompaction`).
 * Source: Node.js docs, "--max-old-space-size", "--max-semi-space-size", "--expose-gc".
 */
export const APP_NODE_OPTIONS = '--max-semi-space-size=8 --max-old-space-size=96 --expose-gc';

/**
 * The glibc malloc settings an app process runs with (environment variables glibc reads at start):
 * - `MALLOC_ARENA_MAX=1`: one arena for every thread. By default each thread that allocates gets an arena of its own
 *   (up to 8 per core), and what V8's compiler and GC threads free stays in theirs: 14–20 MB of the order app's
 *   resident set after the bench's burst;
 * - `MALLOC_TRIM_THRESHOLD_` 1 MiB and `MALLOC_MMAP_THRESHOLD_` 256 KiB, fixed: the free top of the heap goes back to
 *   the system past 1 MiB, and a block of 256 KiB or more is mapped on its own and unmapped when freed. By default
 *   glibc raises both each time a large mapped block is freed (up to 32 MiB), and then keeps that much.
 * Measured with the bench's 10,000-saga burst, three pairs (2026-12-06): 0–10 MB less RSS per app (the order app 2–6),
 * CPU per saga unchanged within the runs' spread.
 * Source: glibc manual, "Memory Allocation Tunables"; mallopt(3) (M_ARENA_MAX, M_TRIM_THRESHOLD, M_MMAP_THRESHOLD).
 */
export const APP_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '1048576',
  MALLOC_MMAP_THRESHOLD_: '262144',
};

/**
 * `env` for an app process: `APP_MALLOC_ENV` where `env` does not set them, and `APP_NODE_OPTIONS` before its own
 * `NODE_OPTIONS` (a flag given there again wins: the last one counts). Whoever starts an app uses it (`orderflow
 * services start`, the bench, the fault suite); docker-compose sets the same.
 */
export const withAppProcessEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...APP_MALLOC_ENV,
  ...env,
  NODE_OPTIONS: `${APP_NODE_OPTIONS} ${env.NODE_OPTIONS ?? ''}`.trim(),
});
