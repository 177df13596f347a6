import pino from 'pino';
import { Namespace } from '@orderflow/contracts';
import { JetStreamClient, provisionTopology } from '@orderflow/messaging';
import { Config } from '@orderflow/runtime';
import { migrateDatabases } from '../../apps/cli/src/setup/setup';

/**
 * What `orderflow setup` provisions on NATS (streams, durable consumers, the bucket) for `config`'s namespace, on a
 * broker that lets anyone in: the apps no longer create them. (`provisionAll` adds the databases.)
 */
export async function provisionNats(config: Config): Promise<void> {
  const client = await JetStreamClient.connect(
    config.NATS_URL,
    new Namespace(config.ORDERFLOW_NAMESPACE),
    pino({ level: 'silent' }),
    'test-setup',
  );
  try {
    await provisionTopology(client, {
      workMaxAgeMs: config.STREAM_MAX_AGE,
      dlqMaxAgeMs: config.DLQ_MAX_AGE,
      dlqMaxBytes: config.DLQ_MAX_BYTES,
      replicas: config.NATS_STREAM_REPLICAS,
      maxDeliver: config.MAX_DELIVER,
      ackWaitMs: config.ACK_WAIT_MS,
    });
  } finally {
    await client.close();
  }
}

/** What `orderflow setup --no-keys` does: NATS as `provisionNats`, and every service's roles, schema and migrations. */
export async function provisionAll(config: Config): Promise<void> {
  await provisionNats(config);
  await migrateDatabases(config, false);
}
