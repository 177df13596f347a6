#!/usr/bin/env node
// The `orderflow` command: runs the compiled CLI (built by `npm run build`, which `npm ci` runs).
const path = require('node:path');
const entry = path.join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js');
try {
  require.resolve(entry);
} catch {
  process.stderr.write('orderflow: not built yet; run `npm run build` (or `npm ci`)\n');
  process.exit(1);
}
process.env.ORDERFLOW_CLI = '1';
require(entry);
