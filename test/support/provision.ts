import pino from 'pino';
import { Namespace } from '@orderflow/contracts';
import { JetStreamClient, provisionTopology } from '@orderflow/messaging';
import { Config } from '@orderflow/runtime';

/**
 * What `orderflow setup` provisions on NATS (streams, durable consumers, the bucket) for `config`'s namespace, on a
 * broker that lets anyone in: the apps no longer create them.
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
