import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Tests run several instances of an app on one host (in-process stacks, apps spawned by the CLI, the fault suite's
// pairs): each takes any free HTTP port for its metrics and health, advertised on loopback.
process.env.METRICS_PORT ??= '0';
// Integration tests use the shared NATS server, which lets anyone in: no identities (the broker-auth test starts a
// private server with `orderflow setup`'s config and sets its own). A secrets folder of the test run's own, so keys a
// developer's `npm start` left in .orderflow/ are not picked up (`db migrate` writes the roles' passwords there).
process.env.ORDERFLOW_INSECURE ??= '1';
process.env.ORDERFLOW_SECRETS ??= mkdtempSync(join(tmpdir(), 'orderflow-test-secrets-'));
// The operator the tests act as: setup gives it a key (operator commands are signed) and registers it.
process.env.ORDERFLOW_OPERATOR ??= 'ops-test';
// JetStream reserves each stream's max_bytes on the server: on the shared test server, 2 streams of 1 GiB per test
// file's namespace would add up; tests never come near these.
process.env.ORDER_STREAM_MAX_BYTES ??= String(64 * 1024 * 1024);
process.env.DLQ_MAX_BYTES ??= String(64 * 1024 * 1024);
