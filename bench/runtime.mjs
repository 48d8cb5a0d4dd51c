// Runtime API suite (node bench/run.mjs --suite runtime): the Layotto gRPC Runtime API of
// capa-runtime (bench/runtime.yaml) under load — state on state.memory and state.redis (against
// ioredis called directly on the same Redis), and publish → delivery to an HTTP app through
// pubsub.jetstream. See bench/README.md, "Runtime suite".
//
// This file is also the suite's child processes (each pinned by the orchestrator):
//   node bench/runtime.mjs state   --target H:P --store S --op save|get [--client h2load|h2|grpcjs] [--sessions 1] [--callers 32] [--warmup ms] [--duration ms] [--size 64]
//   node bench/runtime.mjs redis   --prefix P --op save|get [--callers 1] [--warmup ms] [--duration ms] [--size 64]
//   node bench/runtime.mjs publish --via grpc|http --target H:P --phase X [--rate R | --callers 32] [--conns N] [--warmup ms] [--duration ms]
//   node bench/runtime.mjs app     --port P [--pubsub natsps] [--topic bench]
// Load children print "MEASURING" (stderr) when the warm-up ends and one JSON line (stdout) at exit.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFileSync, readdirSync, mkdirSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { leanHttpPoster, leanHttpServer } from './runtime-http1.mjs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);

export const RUNTIME_TARGETS = { stateCps: 10_000, stateP99Ms: 5, redisAddedP50Ms: 0.5, pubsubRate: 5000, pubsubP99Ms: 20 };
const PUBSUB = 'natsps';
const TOPIC = 'bench';
const ROUTE = '/bench';
const KEYS_PER_CALLER = 100;

const nowNs = () => process.hrtime.bigint();

// =============================================================================================
// Child side: load generators and the app

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function latencySummary(samples) {
  const s = Float64Array.from(samples).sort();
  let sum = 0;
  for (const x of s) sum += x;
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), p999: percentile(s, 99.9), max: s.length ? s[s.length - 1] : null, mean: s.length ? sum / s.length : null };
}

/** The Layotto runtime.proto as @grpc/proto-loader loads it (as src/runtime-api/grpc/proto.ts does). */
async function runtimeDefinition() {
  const protoLoader = await import('@grpc/proto-loader');
  const root = join(dirname(createRequire(import.meta.url).resolve('layotto/package.json')), 'proto');
  return protoLoader.loadSync([join(root, 'runtime/v1/runtime.proto')], { keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true, includeDirs: [root] });
}

/** The Layotto Runtime client of @grpc/grpc-js. */
async function runtimeClient(target) {
  const grpc = await import('@grpc/grpc-js');
  const Runtime = grpc.loadPackageDefinition(await runtimeDefinition()).spec.proto.runtime.v1.Runtime;
  // Retries off: the retry layer only adds per-call work here (no call is ever retried).
  const client = new Runtime(target, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 });
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  const unary = (method, req) => new Promise((resolve, reject) => client[method](req, (err, res) => (err ? reject(err) : resolve(res))));
  return { unary, close: () => client.close() };
}

/**
 * Closed loop: `callers` loops each awaiting `op(caller, i)` back to back; calls started during
 * the warm-up are not recorded. `op` resolves true, or false for a wrong answer (counted).
 */
async function closedLoop({ callers, warmupMs, durationMs }, op) {
  const samples = [];
  let errors = 0;
  let mismatches = 0;
  let firstError = null;
  let measuring = false;
  const t0 = nowNs();
  const warmEnd = t0 + BigInt(Math.round(warmupMs * 1e6));
  let mStart = warmEnd;
  const end = warmEnd + BigInt(Math.round(durationMs * 1e6));
  let cpu0 = process.cpuUsage();
  async function loop(c) {
    for (let i = 0; ; i++) {
      const start = nowNs();
      if (start >= end) return;
      if (!measuring && start >= warmEnd) {
        measuring = true;
        mStart = start;
        cpu0 = process.cpuUsage();
        process.stderr.write('MEASURING\n');
      }
      const rec = measuring;
      try {
        const ok = await op(c, i);
        if (rec) {
          samples.push(Number(nowNs() - start) / 1e6);
          if (!ok) mismatches++;
        }
      } catch (e) {
        if (rec) errors++;
        firstError ??= `${e.code ?? ''} ${e.details ?? e.message}`.trim();
      }
    }
  }
  await Promise.all(Array.from({ length: callers }, (_, c) => loop(c)));
  const seconds = Number(nowNs() - mStart) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { calls: samples.length, errors, mismatches, firstError, seconds, cps: samples.length / seconds, ...latencySummary(samples), clientCpuUsPerCall: samples.length ? (cpu.user + cpu.system) / samples.length : null };
}

const keyOf = (c, i) => `k${c}-${i % KEYS_PER_CALLER}`;

/**
 * State calls over the chosen client: `h2` (bench/lib/h2grpc.mjs — every request encoded once up
 * front, one per key, so a call costs the client only the HTTP/2 stream) or `grpcjs` (@grpc/grpc-js,
 * objects serialised per call). Both send the same bytes: proto-loader's serialiser.
 */
async function stateCalls(v, callers, value) {
  const store_name = v.store;
  const saveReq = (c, i) => ({ store_name, states: [{ key: keyOf(c, i), value }] });
  const getReq = (c, i) => ({ store_name, key: keyOf(c, i) });
  const seed = (c) => ({ store_name, states: Array.from({ length: KEYS_PER_CALLER }, (_, i) => ({ key: keyOf(c, i), value })) });
  if (v.client === 'grpcjs') {
    const client = await runtimeClient(v.target);
    return {
      seed: (c) => client.unary('SaveState', seed(c)),
      save: async (c, i) => (await client.unary('SaveState', saveReq(c, i)), true),
      get: async (c, i) => (await client.unary('GetState', getReq(c, i))).data?.length === value.length,
      close: () => client.close(),
    };
  }
  if (v.client !== 'h2') throw new Error(`bad --client ${v.client} (h2 or grpcjs)`);
  const { connectH2Grpc, grpcFrame, bytesFieldLength } = await import('./lib/h2grpc.mjs');
  const svc = (await runtimeDefinition())['spec.proto.runtime.v1.Runtime'];
  const client = await connectH2Grpc(v.target, { sessions: Number(v.sessions) });
  const frames = (m, make) => Array.from({ length: callers }, (_, c) => Array.from({ length: KEYS_PER_CALLER }, (_, i) => grpcFrame(svc[m].requestSerialize(make(c, i)))));
  const saves = frames('SaveState', saveReq);
  const gets = frames('GetState', getReq);
  const S = svc.SaveState.path;
  const G = svc.GetState.path;
  return {
    seed: (c) => client.unary(S, grpcFrame(svc.SaveState.requestSerialize(seed(c))), c),
    save: async (c, i) => (await client.unary(S, saves[c][i % KEYS_PER_CALLER], c), true),
    // GetStateResponse.data is field 1: its length is all a get has to match.
    get: async (c, i) => bytesFieldLength(await client.unary(G, gets[c][i % KEYS_PER_CALLER], c), 1) === value.length,
    close: () => client.close(),
  };
}

/**
 * The same state load from h2load (nghttp2's C load generator: no GC pauses of its own in the
 * latencies): `sessions` connections × `callers / sessions` streams, the same request bytes every
 * call. h2load does not read gRPC trailers, so one call through bench/lib/h2grpc.mjs first checks
 * that this request answers grpc-status 0 (and seeds the key a get reads).
 */
async function h2loadState(v) {
  const { connectH2Grpc, grpcFrame } = await import('./lib/h2grpc.mjs');
  const svc = (await runtimeDefinition())['spec.proto.runtime.v1.Runtime'];
  const value = Buffer.alloc(Number(v.size), 'v');
  const m = v.op === 'save' ? 'SaveState' : 'GetState';
  const req = v.op === 'save' ? { store_name: v.store, states: [{ key: 'h2load', value }] } : { store_name: v.store, key: 'h2load' };
  const frame = grpcFrame(svc[m].requestSerialize(req));
  const check = await connectH2Grpc(v.target, { sessions: 1 });
  await check.unary(svc.SaveState.path, grpcFrame(svc.SaveState.requestSerialize({ store_name: v.store, states: [{ key: 'h2load', value }] })), 0);
  await check.unary(svc[m].path, frame, 0); // rejects on a non-zero grpc-status
  check.close();
  const dir = mkdtempSync(join(os.tmpdir(), 'capa-h2load-'));
  const body = join(dir, 'body.bin');
  const logFile = join(dir, 'h2load.log');
  writeFileSync(body, frame);
  const sessions = Math.max(1, Number(v.sessions));
  const streams = Math.max(1, Math.ceil(Number(v.callers) / sessions));
  const url = `http://${v.target}${svc[m].path}`;
  const args = (extra) => ['-c', String(sessions), '-m', String(streams), '-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers', ...extra, url];
  execFileSync('h2load', args(['-D', String(Math.max(1, Math.round(Number(v.warmup) / 1000)))]), { stdio: 'ignore' });
  const seconds = Math.max(1, Math.round(Number(v.duration) / 1000));
  process.stderr.write('MEASURING\n');
  const out = execFileSync('h2load', args(['-D', String(seconds), '--log-file', logFile]), { encoding: 'utf8' });
  const samples = [];
  let errors = 0;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const [, status, us] = line.split('\t');
    if (us === undefined) continue;
    if (status !== '200') errors++;
    else samples.push(Number(us) / 1000);
  }
  rmSync(dir, { recursive: true, force: true });
  const failed = /(\d+) failed/.exec(out);
  return { calls: samples.length, errors: errors + Number(failed?.[1] ?? 0), mismatches: 0, firstError: null, seconds, cps: samples.length / seconds, ...latencySummary(samples), clientCpuUsPerCall: null };
}

async function stateLoad(v) {
  if (v.client === 'h2load') return h2loadState(v);
  const callers = Number(v.callers);
  const value = Buffer.alloc(Number(v.size), 'v');
  const calls = await stateCalls(v, callers, value);
  // Every key a get asks for exists (one bulk save per caller first).
  for (let c = 0; c < callers; c++) await calls.seed(c);
  const res = await closedLoop({ callers, warmupMs: Number(v.warmup), durationMs: Number(v.duration) }, v.op === 'save' ? calls.save : calls.get);
  calls.close();
  return res;
}

/** The same Redis commands state.redis sends (HMGET; EVALSHA of its write script), straight from ioredis. */
async function redisLoad(v) {
  const { Redis } = await import('ioredis');
  const { WRITE_SCRIPT } = await import(pathToFileURL(join(ROOT, 'dist/components/state/redis/scripts.js')).href);
  const [host, port] = (process.env.REDIS_HOST || '127.0.0.1:6379').split(':');
  const client = new Redis({ host, port: Number(port), enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
  await client.connect();
  client.defineCommand('capaStateWrite', { lua: WRITE_SCRIPT });
  const callers = Number(v.callers);
  const value = Buffer.alloc(Number(v.size), 'v');
  const counter = `${v.prefix}\u0000capa-etag-seq`;
  const write = (key) => client.capaStateWrite(2, counter, v.prefix + key, 'set', 'none', '', value, '0');
  for (let c = 0; c < callers; c++) for (let i = 0; i < KEYS_PER_CALLER; i++) await write(keyOf(c, i));
  const op =
    v.op === 'save'
      ? async (c, i) => (await write(keyOf(c, i)), true)
      : async (c, i) => {
          const [data, version] = await client.hmgetBuffer(v.prefix + keyOf(c, i), 'data', 'version');
          return data?.length === value.length && version != null;
        };
  const res = await closedLoop({ callers, warmupMs: Number(v.warmup), durationMs: Number(v.duration) }, op);
  client.disconnect();
  return res;
}

/**
 * A publish function over the chosen front end: gRPC PublishEvent or Dapr HTTP POST
 * /v1.0/publish — over the lean keep-alive client of runtime-http1.mjs, or node:http with an
 * Agent when `PUBSUB_LOAD=node` (the load side's own cost, compared).
 */
async function publisher(via, target, conns) {
  if (via === 'grpc') {
    const client = await runtimeClient(target);
    const publish = (body) => client.unary('PublishEvent', { pubsub_name: PUBSUB, topic: TOPIC, data: body, data_content_type: 'application/json' });
    return { publish, close: () => client.close() };
  }
  if (process.env.PUBSUB_LOAD !== 'node') return leanHttpPoster(target, `/v1.0/publish/${PUBSUB}/${TOPIC}`, 'application/json', conns, 204);
  const [host, port] = target.split(':');
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const publish = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host, port, method: 'POST', path: `/v1.0/publish/${PUBSUB}/${TOPIC}`, agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`publish answered ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  return { publish, close: () => agent.destroy() };
}

/**
 * Publishes {seq, t (hrtime ns when handed to the client), phase} as JSON. `--rate` R > 0: open
 * loop, R msgs/s on a 1 ms tick (at most 2000 in flight; a tick that finds the cap counts as
 * `capped`); otherwise `--callers` closed loops. Warm-up messages carry phase "<phase>-warm".
 */
async function publishLoad(v) {
  const rate = Number(v.rate ?? 0);
  const callers = Number(v.callers);
  // Paced: a pool of 64 keep-alive connections (publishes beyond it wait for one, their time
  // counted); 256 made both ends pay for connections that only mattered once the sidecar fell behind.
  const pub = await publisher(v.via, v.target, Number(v.conns ?? (rate > 0 ? 64 : callers)));
  const pad = 'x'.repeat(Math.max(0, Number(v.size) - 60));
  const warmupMs = Number(v.warmup);
  const durationMs = Number(v.duration);
  let seq = 0;
  let phase = `${v.phase}-warm`;
  let published = 0;
  let errors = 0;
  let firstError = null;
  let firstPublishNs = null;
  const acks = [];
  async function one() {
    const t = nowNs();
    const json = JSON.stringify({ seq: ++seq, t: String(t), phase, pad });
    const body = v.via === 'http' && process.env.PUBSUB_LOAD !== 'node' ? json : Buffer.from(json);
    const rec = !phase.endsWith('-warm');
    if (rec) firstPublishNs ??= t;
    try {
      await pub.publish(body);
      if (rec) {
        published++;
        acks.push(Number(nowNs() - t) / 1e6);
      }
    } catch (e) {
      if (rec) errors++;
      firstError ??= `${e.code ?? ''} ${e.details ?? e.message}`.trim();
    }
  }
  const t0 = nowNs();
  const warmEnd = t0 + BigInt(Math.round(warmupMs * 1e6));
  const end = warmEnd + BigInt(Math.round(durationMs * 1e6));
  let cpu0 = process.cpuUsage();
  let mStart = warmEnd;
  const enterMeasure = () => {
    phase = v.phase;
    mStart = nowNs();
    cpu0 = process.cpuUsage();
    process.stderr.write('MEASURING\n');
  };
  let capped = 0;
  if (rate > 0) {
    const inflight = new Set();
    let sent = 0;
    let base = t0;
    for (;;) {
      const now = nowNs();
      if (now >= end) break;
      if (phase.endsWith('-warm') && now >= warmEnd) {
        enterMeasure();
        base = now;
        sent = 0;
      }
      const due = Math.floor((Number(now - base) / 1e9) * rate);
      while (sent < due) {
        if (inflight.size >= 2000) {
          capped++;
          sent = due; // drop the backlog: the schedule restarts from now
          break;
        }
        sent++;
        const p = one().finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await sleep(1);
    }
    await Promise.all(inflight);
  } else {
    async function loop() {
      for (;;) {
        const now = nowNs();
        if (now >= end) return;
        if (phase.endsWith('-warm') && now >= warmEnd) enterMeasure();
        await one();
      }
    }
    await Promise.all(Array.from({ length: callers }, loop));
  }
  const seconds = Number(nowNs() - mStart) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  pub.close();
  return {
    published,
    errors,
    firstError,
    capped,
    seconds,
    publishRate: published / seconds,
    firstPublishNs: String(firstPublishNs ?? 0n),
    ack: latencySummary(acks),
    clientCpuUsPerMsg: published ? (cpu.user + cpu.system) / published : null,
  };
}

/**
 * The baseline without the sidecar: nats.js publishing to the round's stream (subject
 * `<stream>.direct`, `--callers` closed loops) and consuming it in the same process through a
 * durable pull consumer as pubsub.jetstream makes them (explicit ack, 64 at a time).
 */
async function natsDirectLoad(v) {
  const nats = await import('nats');
  const nc = await nats.connect({ servers: process.env.NATS_URL || 'nats://127.0.0.1:4222' });
  const jsm = await nc.jetstreamManager();
  const subject = `${v.stream}.direct`;
  await jsm.consumers.add(v.stream, { durable_name: 'direct', ack_policy: nats.AckPolicy.Explicit, filter_subject: subject, deliver_policy: nats.DeliverPolicy.All });
  const js = nc.jetstream();
  const msgs = await (await js.consumers.get(v.stream, 'direct')).consume({ max_messages: 64 });
  let phase = 'warm';
  const seen = new Set();
  const lat = [];
  let received = 0;
  let firstRecv = null;
  let lastRecv = null;
  const consumed = (async () => {
    for await (const m of msgs) {
      const recv = nowNs();
      m.ack();
      const d = JSON.parse(Buffer.from(m.data).toString('utf8'));
      if (d.phase !== 'run') continue;
      received++;
      if (seen.has(d.seq)) continue;
      seen.add(d.seq);
      lat.push(Number(recv - BigInt(d.t)) / 1e6);
      firstRecv ??= recv;
      lastRecv = recv;
    }
  })();
  const pad = 'x'.repeat(Math.max(0, Number(v.size) - 60));
  let seq = 0;
  let published = 0;
  let errors = 0;
  let firstError = null;
  const acks = [];
  const warmEnd = nowNs() + BigInt(Number(v.warmup) * 1e6);
  const end = warmEnd + BigInt(Number(v.duration) * 1e6);
  let mStart = warmEnd;
  let cpu0 = process.cpuUsage();
  async function loop() {
    for (;;) {
      const t = nowNs();
      if (t >= end) return;
      if (phase === 'warm' && t >= warmEnd) {
        phase = 'run';
        mStart = t;
        cpu0 = process.cpuUsage();
        process.stderr.write('MEASURING\n');
      }
      const rec = phase === 'run';
      try {
        await js.publish(subject, Buffer.from(JSON.stringify({ seq: ++seq, t: String(t), phase, pad })));
        if (rec) {
          published++;
          acks.push(Number(nowNs() - t) / 1e6);
        }
      } catch (e) {
        if (rec) errors++;
        firstError ??= e.message;
      }
    }
  }
  await Promise.all(Array.from({ length: Number(v.callers) }, loop));
  const seconds = Number(nowNs() - mStart) / 1e9;
  const waitUntil = Date.now() + 30_000;
  while (seen.size < published && Date.now() < waitUntil) await sleep(20);
  const cpu = process.cpuUsage(cpu0);
  await msgs.close();
  await consumed;
  await nc.close();
  return {
    published,
    errors,
    firstError,
    capped: 0,
    seconds,
    publishRate: published / seconds,
    ack: latencySummary(acks),
    // Publisher and consumer are one process here: its CPU covers both sides.
    clientCpuUsPerMsg: published ? (cpu.user + cpu.system) / published : null,
    delivery: {
      received,
      unique: seen.size,
      duplicates: received - seen.size,
      complete: seen.size >= published,
      deliverySpanS: firstRecv == null ? 0 : Number(lastRecv - firstRecv) / 1e9,
      ...latencySummary(lat),
    },
  };
}

/**
 * The subscribing app: Dapr's /dapr/subscribe, and the route recording receive − publish time per
 * phase. Served by the lean HTTP/1.1 server of runtime-http1.mjs, or node:http with `--http node`.
 */
function app(v) {
  const phases = new Map();
  const phaseOf = (name) => {
    let p = phases.get(name);
    if (!p) phases.set(name, (p = { received: 0, seen: new Set(), latencies: [], firstRecvNs: null, lastRecvNs: null }));
    return p;
  };
  const subscribe = JSON.stringify([{ pubsubname: v.pubsub, topic: v.topic, route: ROUTE }]);
  /** One delivery, received (whole) at `recv`. */
  const record = (body, recv) => {
    try {
      const env = JSON.parse(body.toString('utf8'));
      const d = typeof env.data === 'string' ? JSON.parse(env.data) : env.data;
      const p = phaseOf(d.phase);
      p.received++;
      if (p.seen.has(d.seq)) return; // a redelivery: counted, not timed again
      p.seen.add(d.seq);
      p.latencies.push(Number(recv - BigInt(d.t)) / 1e6);
      p.firstRecvNs ??= recv;
      p.lastRecvNs = recv;
    } catch {
      phaseOf('(unreadable)').received++;
    }
  };
  const report = (name) => {
    const p = phaseOf(name);
    const span = p.firstRecvNs == null ? 0 : Number(p.lastRecvNs - p.firstRecvNs) / 1e9;
    return JSON.stringify({
      received: p.received,
      unique: p.seen.size,
      duplicates: p.received - p.seen.size,
      firstRecvNs: String(p.firstRecvNs ?? 0n),
      lastRecvNs: String(p.lastRecvNs ?? 0n),
      deliverySpanS: span,
      ...latencySummary(p.latencies),
    });
  };
  const JSON_TYPE = 'application/json';
  /** { status, type?, body? } for one request (the delivery is recorded after its answer is queued). */
  const handle = (method, url, body, recv) => {
    if (method === 'GET' && url === '/dapr/subscribe') return { status: 200, type: JSON_TYPE, body: subscribe };
    if (method === 'POST' && url === ROUTE) return { status: 200, record: () => record(body, recv) };
    if (method === 'GET' && url.startsWith('/report?phase=')) return { status: 200, type: JSON_TYPE, body: report(decodeURIComponent(url.slice('/report?phase='.length))) };
    return { status: 404 };
  };
  const listening = () => process.stdout.write('listening\n');
  if (v.http !== 'node') {
    const server = leanHttpServer((method, url, body) => {
      const r = handle(method, url, body, nowNs());
      if (r.record) process.nextTick(r.record); // after the answer is written, as the node:http app does
      return r;
    });
    server.listen(Number(v.port), '127.0.0.1', listening);
    return;
  }
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const r = handle(req.method, req.url, Buffer.concat(chunks), nowNs());
      res.writeHead(r.status, r.type ? { 'content-type': r.type } : {}).end(r.body);
      r.record?.();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(v.port), '127.0.0.1', listening);
}

async function childMain() {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      store: { type: 'string', default: 'memstore' },
      op: { type: 'string', default: 'get' },
      callers: { type: 'string', default: '32' },
      warmup: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10000' },
      size: { type: 'string', default: '64' },
      client: { type: 'string', default: 'h2' },
      sessions: { type: 'string', default: '1' },
      prefix: { type: 'string' },
      stream: { type: 'string' },
      via: { type: 'string', default: 'grpc' },
      rate: { type: 'string' },
      phase: { type: 'string', default: 'run' },
      port: { type: 'string' },
      pubsub: { type: 'string', default: PUBSUB },
      topic: { type: 'string', default: TOPIC },
      http: { type: 'string', default: 'lean' },
      conns: { type: 'string' },
    },
  });
  const mode = positionals[0];
  if (mode === 'app') return app(v);
  const fn = { state: stateLoad, redis: redisLoad, publish: publishLoad, natsdirect: natsDirectLoad }[mode];
  if (!fn) {
    console.error('usage: runtime.mjs state|redis|publish|app [options] (see the top of the file)');
    process.exit(2);
  }
  const res = await fn(v);
  process.stdout.write(`${JSON.stringify(res)}\n`);
  process.exit(0);
}

// =============================================================================================
// Orchestrator side

let lib = null;
/** The harness libraries, only in the orchestrator (children do not need them). */
async function libs() {
  lib ??= {
    procs: await import('./lib/procs.mjs'),
    cpu: await import('./lib/cpu.mjs'),
    table: await import('./lib/table.mjs'),
    capa: await import('./lib/capa.mjs'),
    sys: await import('./lib/sysinfo.mjs'),
    prof: await import('./lib/cpuprofile.mjs'),
  };
  return lib;
}

const SELF = fileURLToPath(import.meta.url);

/** Last JSON line a child printed. */
function lastJson(text) {
  const line = text.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no result from the load child: ${text.trim().slice(-300)}`);
  return JSON.parse(line);
}

/**
 * Run one load child (pinned to the load core) and read the CPU of `watch` (pid → label) over its
 * measured window: from its "MEASURING" line to its exit (+ `drain()`, for pub/sub).
 */
async function runChild(args, o, watch, drain = null) {
  const { procs, cpu } = await libs();
  const rec = procs.start(`runtime-${args[0]}`, process.execPath, [SELF, ...args], { cpus: o.loadCpu, cwd: ROOT });
  const deadline = Date.now() + 60_000 + o.durationS * 1000 + o.warmupS * 1000;
  while (!rec.output.includes('MEASURING') && !rec.exited && Date.now() < deadline) await sleep(5);
  const before = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, pid ? cpu.treeCpu(pid) : null]));
  const exit = await Promise.race([rec.exitPromise, sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
  if (!exit) {
    await procs.stop(rec);
    throw new Error(`load child ${args[0]} did not finish in time`);
  }
  if (exit.code !== 0) throw new Error(`load child ${args.join(' ')} failed (${exit.code ?? exit.signal}): ${rec.output.trim().slice(-400)}`);
  const res = lastJson(rec.output);
  if (drain) res.delivery = await drain(res);
  const cpuS = {};
  const sysS = {};
  for (const [k, pid] of Object.entries(watch)) {
    const d = before[k] ? cpu.cpuDelta(before[k], cpu.treeCpu(pid)) : null;
    cpuS[k] = d?.seconds ?? null;
    sysS[k] = d?.systemSeconds ?? null;
  }
  res.cpuS = cpuS;
  res.sysS = sysS;
  return res;
}

async function httpJson(url) {
  const { procs } = await libs();
  const r = await procs.httpGet(url, 2000);
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}`);
  return JSON.parse(r.body);
}

/** Waits until the app has every published message of `phase` (or deliveries stop for 5 s). */
async function waitDelivered(appPort, phase, published, maxMs = 30_000) {
  const url = `http://127.0.0.1:${appPort}/report?phase=${encodeURIComponent(phase)}`;
  const t0 = Date.now();
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const r = await httpJson(url);
    if (r.unique >= published) return { ...r, complete: true };
    if (r.unique !== last) {
      last = r.unique;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > 5000 || Date.now() - t0 > maxMs) return { ...r, complete: false };
    await sleep(50);
  }
}

function pidOf(name) {
  try {
    return Number(execFileSync('pgrep', ['-o', '-x', name], { encoding: 'utf8' }).trim()) || null;
  } catch {
    return null;
  }
}

/**
 * The measurements of one round, in order; `RUNTIME_ONLY` (a comma list of groups — state, redis,
 * pubsub — or workload ids) keeps only those, for iterating on one part.
 */
function workloads(o) {
  const only = (process.env.RUNTIME_ONLY ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const all = allWorkloads(o);
  return only.length ? all.filter((w) => only.includes(w.group) || only.includes(w.id)) : all;
}

function allWorkloads(o) {
  const ms = (s) => String(Math.round(s * 1000));
  const warm = ms(Math.max(1, o.warmupS));
  // 1 caller runs ~1,000 calls/s through the sidecar: 3 s give a steady p50 and keep the suite short.
  const lat = String(Math.min(o.latencyMs, 3000));
  // h2load drives the two verdict rows; the reference and Redis rows use the Node h2 client.
  const nodeClient = o.grpcClient === 'h2load' ? 'h2' : o.grpcClient;
  const state = (store, op, callers, w, d, client = nodeClient, sessions = o.grpcSessions) => ['state', '--store', store, '--op', op, '--client', client, '--sessions', String(client === 'grpcjs' ? 1 : sessions), '--callers', String(callers), '--warmup', w, '--duration', d, '--size', String(o.valueSize)];
  const redisDirect = (op, callers = 1) => ['redis', '--op', op, '--callers', String(callers), '--warmup', '500', '--duration', lat, '--size', String(o.valueSize)];
  const n = o.callers;
  const pub = (phase, extra) => ['publish', '--via', o.publishVia, '--phase', phase, '--warmup', '1000', '--duration', ms(o.durationS), '--size', '128', ...extra];
  return [
    { id: 'mem-save', group: 'state', label: `SaveState, state.memory, ${o.callers} callers`, args: state('memstore', 'save', o.callers, warm, ms(o.durationS), o.grpcClient) },
    { id: 'mem-get', group: 'state', label: `GetState, state.memory, ${o.callers} callers`, args: state('memstore', 'get', o.callers, warm, ms(o.durationS), o.grpcClient) },
    // The Node h2 client on the same load, when h2load drives the verdict (its GC pauses show in p99).
    ...(o.grpcClient === 'h2load'
      ? [{ id: 'mem-get-node', group: 'state', label: `GetState, state.memory, ${o.callers} callers, Node h2 client (reference)`, args: state('memstore', 'get', o.callers, warm, lat, 'h2') }]
      : []),
    // All callers on one h2c connection: the sidecar serves one connection's streams in turn (reference).
    ...(o.grpcClient !== 'grpcjs' && o.grpcSessions > 1
      ? [{ id: 'mem-get-1conn', group: 'state', label: `GetState, state.memory, ${o.callers} callers on one connection (reference)`, args: state('memstore', 'get', o.callers, warm, lat, 'h2', 1) }]
      : []),
    // The same GetState load through @grpc/grpc-js: that client's own cost, apart from the verdict.
    ...(o.grpcClient !== 'grpcjs'
      ? [{ id: 'mem-get-grpcjs', group: 'state', label: `GetState, state.memory, ${o.callers} callers, @grpc/grpc-js client (reference)`, args: state('memstore', 'get', o.callers, warm, lat, 'grpcjs') }]
      : []),
    // The gRPC round trip alone (in-memory store): what of the Redis rows' added latency is not Redis.
    { id: 'mem-get-1', group: 'redis', label: 'GetState, state.memory, 1 caller (reference)', args: state('memstore', 'get', 1, '500', lat) },
    { id: 'redis-get', group: 'redis', label: 'GetState, state.redis, 1 caller', args: state('redisstore', 'get', 1, '500', lat) },
    { id: 'redis-get-direct', group: 'redis', label: 'ioredis HMGET direct, 1 caller', args: redisDirect('get'), direct: true },
    { id: 'redis-save', group: 'redis', label: 'SaveState, state.redis, 1 caller', args: state('redisstore', 'save', 1, '500', lat) },
    { id: 'redis-save-direct', group: 'redis', label: 'ioredis EVALSHA (the store\'s write script) direct, 1 caller', args: redisDirect('save'), direct: true },
    { id: `redis-get-${n}`, group: 'redis', label: `GetState, state.redis, ${n} callers`, args: state('redisstore', 'get', n, '500', lat) },
    { id: `redis-get-${n}-direct`, group: 'redis', label: `ioredis HMGET direct, ${n} callers`, args: redisDirect('get', n), direct: true },
    { id: `redis-save-${n}`, group: 'redis', label: `SaveState, state.redis, ${n} callers`, args: state('redisstore', 'save', n, '500', lat) },
    { id: `redis-save-${n}-direct`, group: 'redis', label: `ioredis EVALSHA direct, ${n} callers`, args: redisDirect('save', n), direct: true },
    // Closed loop first: the paced row then measures a sidecar whose JIT has warmed up (as one in
    // service would be), not the backlog a cold sidecar builds during its first second at 5,000/s.
    { id: 'pub-max', group: 'pubsub', label: `publish → app, ${o.callers} publishers closed loop`, args: pub('max', ['--callers', String(o.callers)]), pubsub: true },
    { id: 'pub-paced', group: 'pubsub', label: `publish → app, paced at ${RUNTIME_TARGETS.pubsubRate.toLocaleString('en-US')} msgs/s`, args: pub('paced', ['--rate', String(RUNTIME_TARGETS.pubsubRate)]), pubsub: true },
    {
      id: 'pub-direct',
      group: 'pubsub',
      label: `nats.js direct (no sidecar): publish → pull consumer, ${o.callers} publishers`,
      args: ['natsdirect', '--callers', String(o.callers), '--warmup', '1000', '--duration', ms(o.durationS), '--size', '128'],
      pubsub: true,
      direct: true,
    },
  ];
}

/** One sidecar (fresh stream), every workload (or those in `only`) against it. */
async function runRound({ o, log, run: runCtx, round, only = null, nodeArgs = [] }) {
  const { procs, capa } = await libs();
  const stream = `${runCtx.id}-r${round}`;
  const s = await capa.startCapaConfig({
    name: 'capa-runtime',
    config: 'runtime.yaml',
    cpus: o.proxyCpu,
    env: { APP_PORT: String(runCtx.appPort), BENCH_PREFIX: runCtx.prefix, STREAM_NAME: stream },
    nodeArgs,
    readyTimeoutMs: Math.max(o.readyTimeoutMs, 10_000),
  });
  if (!s.rec) return { available: false, reason: s.reason, results: {} };
  const grpcTarget = `127.0.0.1:${s.env.GRPC_PORT}`;
  const apiTarget = `127.0.0.1:${s.env.API_PORT}`;
  const results = {};
  try {
    // The app's subscription is made in the background: wait until the sidecar reports it.
    const t0 = Date.now();
    for (;;) {
      const md = await httpJson(`http://${apiTarget}/v1.0/metadata`).catch(() => null);
      if (md?.subscriptions?.some((x) => x.topic === TOPIC)) break;
      if (Date.now() - t0 > 15_000) throw new Error(`the sidecar did not subscribe the app to ${TOPIC} within 15 s`);
      await sleep(50);
    }
    const watch = { sidecar: s.rec.pid, redis: runCtx.redisPid, nats: runCtx.natsPid };
    for (const w of workloads(o)) {
      if (only && !only.includes(w.id)) continue;
      const target = w.pubsub && o.publishVia === 'http' ? apiTarget : grpcTarget;
      const args = w.direct ? [...w.args, w.pubsub ? '--stream' : '--prefix', w.pubsub ? stream : runCtx.prefix] : [...w.args, '--target', target];
      const phase = `${w.id}-${round}${nodeArgs.length ? '-prof' : ''}`;
      if (w.pubsub && !w.direct) args[args.indexOf('--phase') + 1] = phase;
      const drain = w.pubsub && !w.direct ? (res) => waitDelivered(runCtx.appPort, phase, res.published) : null;
      const watched = !w.direct ? (w.pubsub ? { ...watch, app: runCtx.appPid } : watch) : w.pubsub ? { nats: runCtx.natsPid } : { redis: runCtx.redisPid };
      try {
        const res = await runChild(args, o, watched, drain);
        results[w.id] = { ok: true, ...res };
        log(`  ${w.id}: ${describe(w, res)}`);
      } catch (err) {
        results[w.id] = { ok: false, reason: err.message };
        log(`  ${w.id}: failed — ${err.message}`);
      }
    }
    return { available: true, readyMs: s.readyMs, results };
  } catch (err) {
    return { available: false, reason: err.message, results };
  } finally {
    await procs.stop(s.rec, nodeArgs.length ? 15_000 : 3000);
    await deleteStream(stream).catch((e) => log(`  could not delete stream ${stream}: ${e.message}`));
  }
}

function describe(w, r) {
  if (w.pubsub) {
    const d = r.delivery;
    return `published ${r.published} (${Math.round(r.publishRate)}/s, ${r.errors} errors), delivered ${d.unique}${d.complete ? '' : ' (incomplete)'} at ${Math.round(deliveredRate(r))}/s, e2e p50 ${d.p50?.toFixed(2)} ms p99 ${d.p99?.toFixed(2)} ms`;
  }
  return `${Math.round(r.cps)} calls/s, p50 ${r.p50?.toFixed(3)} ms, p99 ${r.p99?.toFixed(3)} ms, ${r.errors} errors, ${r.mismatches} wrong answers`;
}

/** Unique deliveries of the measured phase ÷ time from its first to its last delivery. */
function deliveredRate(r) {
  const d = r.delivery;
  return d && d.deliverySpanS > 0 ? d.unique / d.deliverySpanS : null;
}

async function deleteStream(name) {
  const nats = await import('nats');
  const nc = await nats.connect({ servers: process.env.NATS_URL || 'nats://127.0.0.1:4222', timeout: 2000 });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(name).catch((e) => {
      if (!/not found/i.test(e.message)) throw e;
    });
  } finally {
    await nc.close();
  }
}

async function deleteRedisPrefix(prefix) {
  const { Redis } = await import('ioredis');
  const [host, port] = (process.env.REDIS_HOST || '127.0.0.1:6379').split(':');
  const r = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

/** Per-workload medians over the rounds. */
function summarize(o, rounds) {
  const { median } = lib.table;
  const out = {};
  for (const w of workloads(o)) {
    const ok = rounds.map((r) => r.results[w.id]).filter((x) => x?.ok);
    if (!ok.length) {
      out[w.id] = { label: w.label, available: false, reason: rounds.map((r) => r.results[w.id]?.reason ?? r.reason).find(Boolean) ?? 'not run' };
      continue;
    }
    const m = (f) => median(ok.map(f));
    const perOp = (k, n) => (x) => (x.cpuS?.[k] == null || !n(x) ? null : (x.cpuS[k] * 1e6) / n(x));
    // Share of the sidecar's CPU spent in the kernel (socket reads and writes, wake-ups).
    const sysShare = m((x) => (x.cpuS?.sidecar ? x.sysS.sidecar / x.cpuS.sidecar : null));
    if (w.pubsub) {
      const n = (x) => x.delivery.unique;
      out[w.id] = {
        label: w.label,
        available: true,
        rounds: ok.length,
        publishRate: m((x) => x.publishRate),
        deliveredRate: m(deliveredRate),
        p50: m((x) => x.delivery.p50),
        p99: m((x) => x.delivery.p99),
        p999: m((x) => x.delivery.p999),
        ackP50: m((x) => x.ack.p50),
        ackP99: m((x) => x.ack.p99),
        sidecarUs: m(perOp('sidecar', n)),
        sysShare,
        natsUs: m(perOp('nats', n)),
        clientUs: m((x) => x.clientCpuUsPerMsg),
        appUs: m(perOp('app', n)),
        // Every process on the path (sidecar, nats-server, publisher, app): what the 2 cores must fit.
        totalUs: m((x) => {
          const parts = [perOp('sidecar', n)(x), perOp('nats', n)(x), x.clientCpuUsPerMsg, perOp('app', n)(x)].filter((v) => v != null);
          return parts.length ? parts.reduce((a, b) => a + b, 0) : null;
        }),
        errors: ok.reduce((a, x) => a + x.errors, 0),
        lost: ok.reduce((a, x) => a + Math.max(0, x.published - x.delivery.unique), 0),
        duplicates: ok.reduce((a, x) => a + x.delivery.duplicates, 0),
        capped: ok.reduce((a, x) => a + x.capped, 0),
        firstError: ok.map((x) => x.firstError).find(Boolean) ?? null,
      };
    } else {
      const n = (x) => x.calls;
      out[w.id] = {
        label: w.label,
        available: true,
        rounds: ok.length,
        cps: m((x) => x.cps),
        p50: m((x) => x.p50),
        p99: m((x) => x.p99),
        p999: m((x) => x.p999),
        sidecarUs: w.direct ? null : m(perOp('sidecar', n)),
        sysShare,
        redisUs: m(perOp('redis', n)),
        clientUs: m((x) => x.clientCpuUsPerCall),
        errors: ok.reduce((a, x) => a + x.errors, 0),
        mismatches: ok.reduce((a, x) => a + x.mismatches, 0),
        firstError: ok.map((x) => x.firstError).find(Boolean) ?? null,
      };
    }
  }
  // Added p50 on Redis: paired per round (sidecar − direct), then the median.
  for (const id of ['redis-get', 'redis-save', `redis-get-${o.callers}`, `redis-save-${o.callers}`]) {
    const diffs = rounds.map((r) => [r.results[id], r.results[`${id}-direct`]]).filter(([a, b]) => a?.ok && b?.ok);
    const s = out[id];
    if (s?.available) {
      s.addedP50 = median(diffs.map(([a, b]) => a.p50 - b.p50));
      s.addedP99 = median(diffs.map(([a, b]) => a.p99 - b.p99));
    }
  }
  return out;
}

/** [target, measured, met] rows; met is null when not measurable. */
function verdicts(s) {
  const { fmt } = lib.table;
  const T = RUNTIME_TARGETS;
  const rows = [];
  const row = (target, x, value, show, pass) => rows.push({ target, measured: x?.available && value != null ? show(value) : `not measured${x?.reason ? ` (${x.reason})` : ''}`, met: x?.available && value != null ? pass(value) : null });
  for (const [id, op] of [['mem-save', 'SaveState'], ['mem-get', 'GetState']]) {
    const x = s[id];
    row(`${op} on state.memory through gRPC, 32 callers ≥ ${T.stateCps.toLocaleString('en-US')} calls/s`, x, x?.cps, (v) => `${fmt(v, 0)} calls/s`, (v) => v >= T.stateCps);
    row(`${op} on state.memory, p99 ≤ ${T.stateP99Ms} ms (at that load)`, x, x?.p99, (v) => `${fmt(v, 3)} ms`, (v) => v <= T.stateP99Ms);
  }
  for (const [id, what] of [['redis-get', 'GetState vs ioredis HMGET'], ['redis-save', 'SaveState vs ioredis EVALSHA']]) {
    const x = s[id];
    row(`state.redis ${what}: p50 added by the sidecar ≤ ${T.redisAddedP50Ms} ms (1 caller)`, x, x?.addedP50, (v) => `${v >= 0 ? '+' : ''}${fmt(v, 3)} ms (${fmt(x.p50, 3)} vs ${fmt(s[`${id}-direct`]?.p50, 3)})`, (v) => v <= T.redisAddedP50Ms);
  }
  const max = s['pub-max'];
  row(`publish → app delivery on pubsub.jetstream ≥ ${T.pubsubRate.toLocaleString('en-US')} msgs/s (capacity, closed-loop publishers)`, max, max?.deliveredRate, (v) => `${fmt(v, 0)} msgs/s`, (v) => v >= T.pubsubRate);
  const paced = s['pub-paced'];
  row(
    `publish → app at ${T.pubsubRate.toLocaleString('en-US')} msgs/s: kept up (delivered ≥ 98 % of the rate, nothing lost)`,
    paced,
    paced?.deliveredRate,
    (v) => `${fmt(v, 0)} msgs/s delivered, ${paced.lost} lost`,
    (v) => v >= 0.98 * T.pubsubRate && paced.lost === 0,
  );
  row(`publish → app at ${T.pubsubRate.toLocaleString('en-US')} msgs/s: p99 end-to-end ≤ ${T.pubsubP99Ms} ms`, paced, paced?.p99, (v) => `${fmt(v, 2)} ms (p50 ${fmt(paced.p50, 2)} ms)`, (v) => v <= T.pubsubP99Ms);
  return rows;
}

/** What a profile pass runs: the sidecar's state path (both stores), or publish → delivery at full load. */
const PROFILES = { state: ['mem-save', 'mem-get', 'redis-get'], pubsub: ['pub-max'] };

/** Profiles (state, pubsub) for the targets not met. */
function failedProfiles(rows) {
  const groups = new Set();
  for (const r of rows) if (r.met === false) groups.add(/^(publish|pub)/.test(r.target) ? 'pubsub' : 'state');
  return [...groups];
}

export async function runRuntimeSuite(opts, log) {
  // 5 s per measurement unless --duration says otherwise: two rounds of ~10 measurements stay under ~3 minutes.
  const o = { ...opts, durationS: opts.durationGiven ? opts.durationS : Math.min(opts.durationS, 5) };
  const { procs, table, capa, sys, prof } = await libs();
  const { fmt } = table;
  const grpcJs = JSON.parse(readFileSync(join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')).version;
  const env = sys.sysinfo({ grpcJs, grpcClient: o.grpcClient, capa: capa.capaCommand(['--config', 'bench/runtime.yaml']).descr, natsConcurrency: process.env.NATS_CONCURRENCY || 'parallel' });
  const runCtx = {
    id: `capabench-${Date.now().toString(36)}-${process.pid}`,
    redisPid: pidOf('redis-server'),
    natsPid: pidOf('nats-server'),
  };
  runCtx.prefix = `${runCtx.id}:`;
  const pinning =
    `sidecar on core ${o.proxyCpu} (taskset -c ${o.proxyCpu}); load generators and the subscribing app on core ${o.loadCpu} ` +
    `(taskset -c ${o.loadCpu}); redis-server and nats-server are the machine's own services, not pinned`;

  const [appPort] = await procs.freePorts(1);
  runCtx.appPort = appPort;
  const appRec = procs.start('runtime-app', process.execPath, [SELF, 'app', '--port', String(appPort), '--http', process.env.PUBSUB_LOAD === 'node' ? 'node' : 'lean'], { cpus: o.loadCpu, cwd: ROOT });
  runCtx.appPid = appRec.pid;
  const up = await capa.waitOutput(appRec, 'listening');
  if (!up.ok) throw new Error(`the bench app did not start: ${up.reason}`);
  log(`runtime: app pid ${appRec.pid} on 127.0.0.1:${appPort}; ${o.rounds} round(s) × ${o.durationS}s, ${o.callers} callers, state client ${o.grpcClient}, publish via ${o.publishVia}; run id ${runCtx.id}`);

  const rounds = [];
  const profiles = [];
  try {
    for (let r = 1; r <= o.rounds; r++) {
      log(`runtime round ${r}/${o.rounds}`);
      const res = await runRound({ o, log, run: runCtx, round: r });
      rounds.push({ round: r, ...res });
      if (!res.available) log(`  sidecar not available: ${res.reason}`);
    }
    const summary = summarize(o, rounds);
    const rows = verdicts(summary);
    const selected = new Set(workloads(o).map((w) => w.id));
    // RUNTIME_NO_PROFILE=1 skips the profile pass of targets not met (for quick iterations).
    const auto = process.env.RUNTIME_NO_PROFILE ? [] : failedProfiles(rows);
    const toProfile = (o.profile ? Object.keys(PROFILES) : auto).filter((g) => PROFILES[g].some((id) => selected.has(id)));
    // Shorter runs under the profiler: it is the shares that matter, not the rates.
    const po = { ...o, durationS: Math.min(o.durationS, 4), warmupS: 1 };
    for (const group of toProfile) {
      const dir = join(o.resultsDir, 'runtime-cpuprofile', `${runCtx.id}-${group}`);
      mkdirSync(dir, { recursive: true });
      log(`profile: capa-runtime under --cpu-prof, ${group} workloads`);
      const res = await runRound({ o: po, log, run: runCtx, round: `prof-${group}`, only: PROFILES[group], nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort() : [];
      const file = files.length ? join(dir, files.at(-1)) : null;
      profiles.push({ group, workloads: PROFILES[group], file, available: res.available, reason: res.reason, summary: file ? prof.summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), 20) : null });
    }
    env.loadavgAfter = os.loadavg()[0];
    return report({ o, env, pinning, runCtx, rounds, summary, rows, profiles, fmt, loadNote: sys.loadNote, prof });
  } finally {
    await procs.stop(appRec);
    const cleaned = await deleteRedisPrefix(runCtx.prefix).catch((e) => `failed: ${e.message}`);
    log(`runtime: deleted ${cleaned} Redis keys under ${runCtx.prefix}`);
  }
}

function report({ o, env, pinning, runCtx, rounds, summary: s, rows, profiles, fmt, loadNote, prof }) {
  const T = RUNTIME_TARGETS;
  const mark = (met) => (met == null ? '—' : met ? '**yes**' : '**no**');
  const out = [
    `## capa-runtime runtime API benchmark — ${env.date}`,
    '',
    `- kernel \`${env.kernel}\`, nproc ${env.nproc}, CPU ${env.cpuModel}, node ${env.node}, @grpc/grpc-js ${env.grpcJs}`,
    `- pinning: ${pinning}`,
    `- capa-runtime: ${env.capa} (fresh per round; state.memory \`memstore\`, state.redis \`redisstore\` with keyPrefix \`${runCtx.prefix}\`, ` +
      `pubsub.jetstream \`${PUBSUB}\` on stream \`${runCtx.id}-r<round>\` (file storage, deleted after the round), concurrency ${env.natsConcurrency})`,
    `- state: Layotto gRPC SaveState / GetState (one item, ${o.valueSize}-byte value, ${KEYS_PER_CALLER} keys per caller), client ${o.grpcClient === 'h2load' ? `h2load (nghttp2, C; ${o.grpcSessions} connections × ${Math.ceil(o.callers / o.grpcSessions)} streams, one request checked for grpc-status 0 first)` : o.grpcClient === 'h2' ? `bench/lib/h2grpc.mjs (node:http2, ${o.grpcSessions} h2c connection(s), requests encoded once up front)` : 'one @grpc/grpc-js channel'}, ` +
      `${o.callers} callers each awaiting its call before the next (closed loop), ${o.durationS}s after a ${Math.max(1, o.warmupS)}s warm-up; ` +
      `Redis: 1 and ${o.callers} callers for ${Math.min(o.latencyMs, 3000) / 1000}s each, the sidecar path (same gRPC client) and ioredis sending state.redis's own commands straight to the same Redis, back to back`,
    `- pub/sub: ${o.publishVia === 'grpc' ? 'gRPC PublishEvent' : 'Dapr HTTP POST /v1.0/publish'} (JSON body with the publish time, process.hrtime = CLOCK_MONOTONIC, the same clock in every process); ` +
      `the app (${process.env.PUBSUB_LOAD === 'node' ? 'node:http' : 'lean HTTP/1.1 server, runtime-http1.mjs'}, GET /dapr/subscribe → one subscription, POST ${ROUTE} → 200) records receive − publish time; ` +
      `paced = open loop at ${T.pubsubRate}/s, max = ${o.callers} publishers closed loop; each ${o.durationS}s after a 1s warm-up at the same load; ` +
      `delivered rate = unique deliveries ÷ first-to-last delivery time; medians over ${o.rounds} round(s)`,
    `- ${loadNote(env)}`,
    '',
    '| target | measured | met? |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.target} | ${r.measured.replace(/\|/g, '\\|')} | ${mark(r.met)} |`),
    '',
    '| workload | calls/s | p50 ms | p99 ms | p99.9 ms | added p50 | µs sidecar CPU/call (kernel %) | sidecar ceiling calls/s | µs redis CPU/call | µs client CPU/call | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const signed = (v) => (v == null ? '—' : `${v >= 0 ? '+' : ''}${fmt(v, 3)}`);
  for (const w of workloads(o).filter((x) => !x.pubsub)) {
    const x = s[w.id];
    if (!x.available) {
      out.push(`| ${w.label}: not available (${String(x.reason).replace(/\|/g, '\\|')}) | | | | | | | | | | |`);
      continue;
    }
    out.push(
      `| ${x.label} | ${fmt(x.cps, 0)} | ${fmt(x.p50, 3)} | ${fmt(x.p99, 3)} | ${fmt(x.p999, 3)} | ${x.addedP50 == null ? '—' : signed(x.addedP50)} | ${fmt(x.sidecarUs, 1)}${x.sysShare == null ? '' : ` (${fmt(x.sysShare * 100, 0)} %)`} | ${x.sidecarUs ? fmt(1e6 / x.sidecarUs, 0) : '—'} | ${w.group === 'redis' ? fmt(x.redisUs, 1) : '—'} | ${fmt(x.clientUs, 1)} | ${x.errors + x.mismatches}${x.firstError ? ` (${x.firstError})` : ''} |`,
    );
  }
  out.push(
    '',
    '| pub/sub workload | published/s | delivered/s | e2e p50 ms | e2e p99 ms | e2e p99.9 ms | publish ack p50 / p99 ms | µs sidecar CPU/msg (kernel %) | µs nats-server CPU/msg | µs publisher CPU/msg | µs app CPU/msg | µs all CPU/msg | lost / dup / errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const w of workloads(o).filter((x) => x.pubsub)) {
    const x = s[w.id];
    if (!x.available) {
      out.push(`| ${w.label}: not available (${String(x.reason).replace(/\|/g, '\\|')}) | | | | | | | | | | | | |`);
      continue;
    }
    out.push(
      `| ${x.label} | ${fmt(x.publishRate, 0)} | ${fmt(x.deliveredRate, 0)} | ${fmt(x.p50, 2)} | ${fmt(x.p99, 2)} | ${fmt(x.p999, 2)} | ${fmt(x.ackP50, 2)} / ${fmt(x.ackP99, 2)} | ${fmt(x.sidecarUs, 1)}${x.sysShare == null ? '' : ` (${fmt(x.sysShare * 100, 0)} %)`} | ${fmt(x.natsUs, 1)} | ${fmt(x.clientUs, 1)} | ${fmt(x.appUs, 1)} | ${fmt(x.totalUs, 0)} | ${x.lost} / ${x.duplicates} / ${x.errors}${x.capped ? `, capped ${x.capped}×` : ''}${x.firstError ? ` (${x.firstError})` : ''} |`,
    );
  }
  out.push('');
  const bad = rounds.filter((r) => !r.available);
  if (bad.length) out.push(`**Rounds without a sidecar:** ${bad.map((r) => `${r.round}: ${r.reason}`).join('; ')}`, '');
  for (const p of profiles) {
    if (!p.summary) {
      out.push(`**Profile (${p.group})**: no profile written${p.reason ? ` (${p.reason})` : ''}`, '');
      continue;
    }
    out.push(`**Profile** (capa-runtime under \`node --cpu-prof\` running ${p.workloads.join(', ')}; ${p.file}):`, '', prof.profileMarkdown(p.summary), '');
  }
  return {
    markdown: out.join('\n'),
    json: { suite: 'runtime', environment: env, pinning, options: o, targets: T, runId: runCtx.id, rounds, summary: s, verdicts: rows, profiles },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await childMain();
