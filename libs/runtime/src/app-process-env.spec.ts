import { APP_MALLOC_ENV, APP_NODE_OPTIONS, withAppProcessEnv } from './app-process-env';

describe('withAppProcessEnv', () => {
  it('adds the heap limits and the malloc settings to an environment that has neither', () => {
    const env = withAppProcessEnv({ PGHOST: 'db' });
    expect(env).toEqual({ PGHOST: 'db', ...APP_MALLOC_ENV, NODE_OPTIONS: APP_NODE_OPTIONS });
  });

  it('lets the caller win: its malloc settings are kept, and its NODE_OPTIONS come last', () => {
    const env = withAppProcessEnv({ MALLOC_ARENA_MAX: '4', NODE_OPTIONS: '--max-old-space-size=200' });
    expect(env.MALLOC_ARENA_MAX).toBe('4');
    expect(env.MALLOC_TRIM_THRESHOLD_).toBe(APP_MALLOC_ENV.MALLOC_TRIM_THRESHOLD_);
    expect(env.NODE_OPTIONS).toBe(`${APP_NODE_OPTIONS} --max-old-space-size=200`);
  });
});
