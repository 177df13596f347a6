import { Command } from 'commander';
import { Identity } from '@orderflow/contracts';
import { CliFailure, UsageError } from '../cli.errors';
import { cliConfig } from '../context';
import { print } from '../output';
import { DEFAULT_NATS_CONFIG, runSetup, SetupOptions } from '../setup/setup';

interface SetupFlags {
  rotate?: string;
  keys: boolean;
  natsConfig: string;
  provision: boolean;
  database: boolean;
  json?: boolean;
}

async function run(cmd: Command, flags: SetupFlags, extra: Partial<SetupOptions> = {}): Promise<void> {
  const config = cliConfig(cmd);
  const rows = await runSetup(config, {
    rotate: flags.rotate as Identity | undefined,
    natsConfig: flags.natsConfig,
    keys: flags.keys,
    provision: flags.provision,
    database: flags.database,
    ...extra,
  }).catch((e: Error) => {
    // A rotation of an identity that does not exist, or a malformed operator name: bad usage (exit 2).
    if (e instanceof UsageError || e instanceof RangeError) throw new UsageError(e.message, { cause: e });
    throw new CliFailure(`setup: ${e.message}`, { cause: e });
  });
  print(
    !!flags.json,
    rows,
    ['what', 'name', 'status', 'detail'],
    rows.map((r) => [r.what, r.name, r.status, r.detail]),
  );
}

const withSetupOptions = (c: Command) =>
  c
    .option('--nats-config <file>', 'where to write the nats-server config include', DEFAULT_NATS_CONFIG)
    .option('--no-keys', 'no keys and no nats-server config (a broker without authentication, ORDERFLOW_INSECURE=1)')
    .option('--no-provision', 'do not provision streams, consumers and the bucket on NATS')
    .option('--no-database', 'do not create or migrate the databases')
    .option('--json', 'print JSON');

/**
 * `orderflow setup`: keys, the nats-server auth config, streams and consumers, databases (see `runSetup`). The only
 * command that needs admin rights (the `setup` identity, the Postgres admin credentials).
 */
export function setupCommand(): Command {
  const setup = withSetupOptions(
    new Command('setup')
      .description(
        "create each identity's key, write the nats-server auth config, provision streams, consumers and the bucket, create and migrate the databases (idempotent; the only command that needs admin rights)",
      )
      .option('--rotate <identity>', "replace one identity's key (order, inventory, payment, notification, ingress, setup, operator-NAME)"),
  ).action((flags: SetupFlags, cmd: Command) => run(cmd, flags));
  const operator = new Command('operator').description('operators: the people who run the CLI');
  operator.addCommand(
    withSetupOptions(
      new Command('add').argument('<name>', 'the operator, [a-z0-9][a-z0-9_-]{0,31}').description('add an operator (a key of their own)'),
    ).action((name: string, flags: SetupFlags, cmd: Command) => run(cmd, flags, { addOperators: [name] })),
  );
  setup.addCommand(operator);
  return setup;
}
