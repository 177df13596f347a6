import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The version in orderflow's package.json, found upwards from this file (source tree or `dist/`); `0.0.0` if none. */
export function packageVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'orderflow') return pkg.version ?? '0.0.0';
    }
  }
  return '0.0.0';
}
