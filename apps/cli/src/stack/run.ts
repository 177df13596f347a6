import { AppNames } from '@orderflow/contracts/permissions';
import { Config } from '@orderflow/runtime/config';
import { prepareDeployment } from './deployment';
import { refuseSecondStack, Supervisor } from './supervisor';

/**
 * `orderflow services start` (what `npm start` runs): setup, then the four apps under a `Supervisor`, until Ctrl-C,
 * SIGTERM or `orderflow services stop`. An app that fails to start is reported and retried; it does not stop the others.
 */
export async function runStack(config: Config, dataDir: string): Promise<never> {
  const say = (line: string) => process.stderr.write(`orderflow: ${line}\n`);
  await refuseSecondStack(dataDir); // before setup: a second stack would migrate and provision for nothing
  const deployment = await prepareDeployment(config, dataDir, say);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void supervisor
      .close()
      .then(() => deployment.stop())
      .finally(() => process.exit(0));
  };
  const supervisor = new Supervisor(AppNames, deployment.env, say, stop);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await supervisor.listen(dataDir);
  } catch (e) {
    await deployment.stop();
    throw e;
  }
  const { config: running } = deployment;
  say(
    `starting ${AppNames.join(', ')} (NATS ${running.NATS_URL}, Postgres ${running.PGHOST}:${running.PGPORT}/${running.PGDATABASE}); ` +
      'Ctrl-C or `orderflow services stop` stops them, `orderflow services stop|start APP` one of them',
  );
  const started = await Promise.allSettled(AppNames.map((app) => supervisor.start(app)));
  const down = AppNames.filter((_, i) => started[i].status === 'rejected');
  say(down.length ? `ready but for ${down.join(', ')} (see above)` : `all ${AppNames.length} apps are ready`);
  return new Promise<never>(() => undefined);
}
