#!/usr/bin/env node
// Raw floor: what bare nats.js + `pg` reach on this machine for a saga-shaped workload, with no framework.
// Each "saga" is 5 JetStream hops; every hop is a durable pull consumer that commits one Postgres
// transaction and then publishes the next hop (with Nats-Msg-Id) before acking.
//
// Run from the project root (it resolves nats.js v3 and `pg` from the project's node_modules); `npm run bench` runs it
// after the pipeline, on the same servers:
//   node bench/floor.mjs                      # defaults: N=3000 sagas open-loop, 200 closed-loop
// Env: NATS_URL (nats://127.0.0.1:4222), PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (libpq defaults),
//      N (open-loop sagas), N_CLOSED (closed-loop sagas), WINDOW (max sagas in flight, open loop),
//      HOPS (consumer hops per saga, default 5), WARMUP (sagas run before the closed loop and not measured, default 0).
// Prints one JSON line: {"floor":{"sagas_per_s":..,"p50_ms":..,"p99_ms":..,"closed_p50_ms":..,...,
//   "cpu_ms_per_saga":{"floor":..,"postgres":..,"nats-server":..},"nats_server":"2.10.27"}} (CPU over the open loop;
//   the servers' is every process of that name on the machine; nats_server is the version the server announced).
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(process.cwd() + '/');
const { connect } = require('@nats-io/transport-node');
const { AckPolicy, jetstream, jetstreamManager } = require('@nats-io/jetstream');
const pg = require('pg');

const N = Number(process.env.N ?? 3000);
const N_CLOSED = Number(process.env.N_CLOSED ?? 200);
const WINDOW = Number(process.env.WINDOW ?? 256);
const tag = 'floor' + process.pid;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const STREAM = tag.toUpperCase();
await jsm.streams.add({ name: STREAM, subjects: [tag + '.>'] });
const pool = new pg.Pool({ max: 16 });
const table = tag + '_step';
await pool.query(`create table ${table}(saga text, step text, primary key(saga, step))`);

// HOPS (default 5) sets how many consumer hops a saga makes; each is one transaction and one publish.
const HOPS = Math.max(2, Number(process.env.HOPS ?? 5));
const hops = [
  'created',
  'reserve',
  'charge',
  'create',
  'notify',
  ...Array.from({ length: Math.max(0, HOPS - 5) }, (_, i) => `extra${i}`),
].slice(0, HOPS);
const waiters = new Map();
const iterators = [];
for (let h = 0; h < hops.length; h++) {
  const from = hops[h],
    to = hops[h + 1];
  const name = `${tag}_${from}`;
  await jsm.consumers.add(STREAM, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    filter_subject: `${tag}.${from}`,
    max_ack_pending: 4096,
  });
  const c = await js.consumers.get(STREAM, name);
  const msgs = await c.consume({ max_messages: 512 });
  iterators.push(msgs);
  (async () => {
    for await (const m of msgs) {
      (async () => {
        const id = m.string();
        await pool.query(`insert into ${table}(saga, step) values($1,$2) on conflict do nothing`, [id, from]);
        if (to) await js.publish(`${tag}.${to}`, m.data, { msgID: `${id}:${to}` });
        m.ack();
        if (!to) waiters.get(id)?.();
      })().catch((e) => {
        console.error(e);
        m.nak();
      });
    }
  })();
}

function runSaga(id) {
  return new Promise((resolve, reject) => {
    const t = now();
    waiters.set(id, () => {
      waiters.delete(id);
      resolve(now() - t);
    });
    js.publish(`${tag}.created`, id, { msgID: id }).catch(reject);
  });
}

// Warm-up (WARMUP sagas, 32 in flight), not measured: as the pipeline's, so both are measured with their code compiled.
const warming = new Set();
for (let i = 0; i < Number(process.env.WARMUP ?? 0); i++) {
  const p = runSaga(`w${i}`).finally(() => warming.delete(p));
  warming.add(p);
  if (warming.size >= 32) await Promise.race(warming);
}
await Promise.all(warming);

// Closed loop: one saga at a time — unloaded latency.
const closed = [];
for (let i = 0; i < N_CLOSED; i++) closed.push(await runSaga(`c${i}`));

// CPU seconds of every process named `comm` (utime + stime from /proc/PID/stat, at 100 ticks a second).
function cpuSecondsOf(comm) {
  let sum = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // it exited while we looked
    }
  }
  return sum;
}
const SERVERS = ['postgres', 'nats-server'];

// Open loop: up to WINDOW sagas in flight — throughput.
const lat = [];
const cpu0 = process.cpuUsage();
const servers0 = SERVERS.map(cpuSecondsOf);
const t0 = now();
const inflight = new Set();
for (let i = 0; i < N; i++) {
  const p = runSaga(`o${i}`).then((ms) => {
    lat.push(ms);
    inflight.delete(p);
  });
  inflight.add(p);
  if (inflight.size >= WINDOW) await Promise.race(inflight);
}
await Promise.all(inflight);
const secs = (now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const perSaga = (seconds) => +((seconds * 1000) / N).toFixed(2);
const cpu_ms_per_saga = { floor: perSaga((cpu.user + cpu.system) / 1e6) };
SERVERS.forEach((comm, i) => (cpu_ms_per_saga[comm] = perSaga(cpuSecondsOf(comm) - servers0[i])));

const out = {
  floor: {
    hops: hops.length,
    pg_tx_per_saga: hops.length,
    sagas: N,
    window: WINDOW,
    sagas_per_s: Math.round(N / secs),
    p50_ms: +pct(lat, 0.5).toFixed(1),
    p99_ms: +pct(lat, 0.99).toFixed(1),
    closed_sagas: N_CLOSED,
    closed_p50_ms: +pct(closed, 0.5).toFixed(2),
    closed_p99_ms: +pct(closed, 0.99).toFixed(2),
    cpu_ms_per_saga,
    nats_server: nc.info?.version,
  },
};
for (const it of iterators) await it.close();
await jsm.streams.delete(STREAM);
await pool.query(`drop table ${table}`);
await pool.end();
await nc.close();
console.log(JSON.stringify(out));
