#!/usr/bin/env node
import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { ConfigError, packageVersion } from '@orderflow/runtime';
import { CliFailure, UsageError } from './cli.errors';
import { printable } from './output';
import { accountsCommand } from './commands/accounts.command';
import { benchCommand } from './commands/bench.command';
import { dbCommand } from './commands/db.command';
import { demoCommand } from './commands/demo.command';
import { dlqCommand } from './commands/dlq.command';
import { ordersCommand } from './commands/orders.command';
import { publishCommand } from './commands/publish.command';
import { sagaCommand } from './commands/saga.command';
import { servicesCommand } from './commands/services.command';
import { setupCommand } from './commands/setup.command';
import { stockCommand } from './commands/stock.command';
import { topCommand } from './commands/top.command';

/**
 * `orderflow`: the operator's CLI (commander). Errors the user can act on print one line and exit non-zero
 * (2: bad usage, 1: the pipeline failed or did not answer); only a bug prints a stack trace.
 */
export function buildProgram(): Command {
  const program = new Command('orderflow')
    .description('operate the orderflow pipeline: publish orders, look at orders, stock and accounts, run the services')
    .option('--nats-url <url>', 'NATS server (default: $NATS_URL or nats://127.0.0.1:4222)')
    .option('--namespace <ns>', 'subject/stream namespace (default: $ORDERFLOW_NAMESPACE or none)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride();
  for (const cmd of [
    publishCommand(),
    ordersCommand(),
    sagaCommand(),
    dlqCommand(),
    stockCommand(),
    topCommand(),
    accountsCommand(),
    servicesCommand(),
    setupCommand(),
    dbCommand(),
    demoCommand(),
    benchCommand(),
  ]) {
    program.addCommand(cmd);
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
    await buildProgram().parseAsync(argv);
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
