/**
 * The V8 heap limits an app process runs with, as `NODE_OPTIONS`. Whoever starts an app sets it (`orderflow services
 * start`, the bench, the fault suite, docker-compose); the caller's own `NODE_OPTIONS` come after, so a flag given
 * there wins. V8 otherwise lets the heap of a busy process grow far past what it keeps alive: the order app reached
 * 219 MB RSS in `npm run bench`; with these, 110–130 MB per app, for about 5 % fewer sagas/s (more frequent garbage
 * collection; a 4 MB semi-space measured the same within the bench's noise, for a few MB less). The old space holds
 * the live heap (~45 MB at rest) plus what the consumers may hold: at most CONSUMER_MAX_ACK_PENDING ×
 * STREAM_MAX_MSG_SIZE per consumer (512 × 64 KiB = 32 MB by default).
 * Source: Node.js docs, "--max-old-space-size", "--max-semi-space-size".
 */
export const APP_NODE_OPTIONS = '--max-semi-space-size=8 --max-old-space-size=96';

/** `env` with `APP_NODE_OPTIONS` put before its own `NODE_OPTIONS` (a flag given there again wins: the last one counts). */
export const withAppNodeOptions = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...env,
  NODE_OPTIONS: `${APP_NODE_OPTIONS} ${env.NODE_OPTIONS ?? ''}`.trim(),
});
