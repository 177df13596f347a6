#!/usr/bin/env node
import * as nodeModule from 'node:module';
// Node ≥ 22: V8 keeps the compiled code of the modules it loads (in the OS temp folder), so later runs start sooner.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
import { Command, CommanderError } from 'commander';
import { ConfigError } from '@orderflow/runtime/errors';
import { packageVersion } from '@orderflow/runtime/version';
import { CliFailure, UsageError } from './cli.errors';
import { outputSettings, printable } from './output';

/**
 * The top-level commands: what `orderflow --help` lists, and how to load each. A command's module (and what it imports:
 * nats, TypeORM, Nest, the apps) is loaded only when that command runs or its help is asked for, so `--help` and a
 * query start in a fraction of the time loading every command took.
 */
const commands: { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: 'publish',
    summary: 'publish order.created events (from flags, a file, or generated)',
    load: async () => (await import('./commands/publish.command')).publishCommand(),
  },
  {
    name: 'orders',
    summary: 'look at orders (asks the order service)',
    load: async () => (await import('./commands/orders.command')).ordersCommand(),
  },
  {
    name: 'saga',
    summary: 'look at saga attempts, retry CANCELLED ones, resume FAILED ones (asks the order service)',
    load: async () => (await import('./commands/saga.command')).sagaCommand(),
  },
  {
    name: 'dlq',
    summary: 'the dead-letter stream: inspect, replay, purge, read its audit',
    load: async () => (await import('./commands/dlq.command')).dlqCommand(),
  },
  {
    name: 'stock',
    summary: 'stock per SKU (owned by the inventory service)',
    load: async () => (await import('./commands/stock.command')).stockCommand(),
  },
  {
    name: 'top',
    summary: "a live view of the pipeline from the apps' /metrics; q quits",
    load: async () => (await import('./commands/top.command')).topCommand(),
  },
  {
    name: 'accounts',
    summary: 'customer accounts (owned by the payment service)',
    load: async () => (await import('./commands/accounts.command')).accountsCommand(),
  },
  {
    name: 'services',
    summary: 'the four service apps: list, check, start, stop',
    load: async () => (await import('./commands/services.command')).servicesCommand(),
  },
  {
    name: 'setup',
    summary: 'identities, keys and roles: the broker and database set-up',
    load: async () => (await import('./commands/setup.command')).setupCommand(),
  },
  { name: 'db', summary: 'the database', load: async () => (await import('./commands/db.command')).dbCommand() },
  {
    name: 'demo',
    summary: 'start everything on this machine and run a few orders through it',
    load: async () => (await import('./commands/demo.command')).demoCommand(),
  },
  {
    name: 'bench',
    summary: 'measure saga throughput and latency, and their ratio to the raw nats + pg floor',
    load: async () => (await import('./commands/bench.command')).benchCommand(),
  },
];

/** The top-level command `argv` names (`orderflow [globals] NAME …` or `orderflow help NAME`), if any. */
function commandNamed(argv: string[]): string | undefined {
  const words = argv.slice(2);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '--nats-url' || w === '--namespace')
      i++; // the global option's value
    else if (!w.startsWith('-')) return w === 'help' ? words[i + 1] : w;
  }
  return undefined;
}

/**
 * `orderflow`: the operator's CLI (commander). Errors the user can act on print one line and exit non-zero
 * (2: bad usage, 1: the pipeline failed, refused or did not answer); only a bug prints a stack trace. Only the command
 * `argv` names is loaded; the others are listed by name and summary.
 */
export async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('orderflow')
    .description(
      'operate the orderflow pipeline: publish orders, look at orders, sagas, stock and accounts, inspect and replay dead letters, run the services',
    )
    .option('--nats-url <url>', 'NATS server (default: $NATS_URL or nats://127.0.0.1:4222)')
    .option('--namespace <ns>', 'subject/stream namespace (default: $ORDERFLOW_NAMESPACE or none)')
    .option('--wide', 'tables as wide as their content (by default they are cut to fit the terminal)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride();
  program.hook('preAction', (_, action) => {
    outputSettings.wide = !!action.optsWithGlobals().wide;
  });
  const wanted = commandNamed(argv);
  for (const { name, summary, load } of commands) {
    const cmd = name === wanted ? await load() : new Command(name);
    program.addCommand(cmd.summary(summary));
  }
  // Every command reports commander's own errors (unknown option, missing argument) as one line, and throws
  // instead of exiting so `main` picks the exit code.
  const oneLine = {
    outputError: (text: string, write: (s: string) => void) =>
      write(
        `orderflow: ${text
          .replace(/^error: /, '')
          .trim()
          .replace(/\s*\n\s*/g, ' ')} (see --help)\n`,
      ),
  };
  const configure = (c: Command) => {
    c.exitOverride().configureOutput(oneLine);
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed its one line
    if (e instanceof UsageError) return fail(e.message, 2);
    if (e instanceof CliFailure || e instanceof ConfigError) return fail(e.message, 1);
    throw e;
  }
}

function fail(message: string, code: number): number {
  process.stderr.write(`orderflow: ${printable(message)}\n`);
  return code;
}

/** Exits once stdout and stderr are flushed: a pipe takes writes asynchronously, and exit() would cut them short. */
function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

if (require.main === module) {
  main(process.argv).then(exitAfterFlush, (e) => {
    // One line, as every other error; the stack only on request (a bug report).
    const err = e instanceof Error ? e : new Error(String(e));
    const detail = process.env.ORDERFLOW_DEBUG === '1' ? `\n${err.stack}` : ' (ORDERFLOW_DEBUG=1 prints the stack)';
    process.stderr.write(`orderflow: unexpected error: ${printable(`${err.name}: ${err.message}`.slice(0, 500))}${detail}\n`);
    exitAfterFlush(70);
  });
}
