#!/usr/bin/env node
// Closed-loop gRPC load: one @grpc/grpc-js channel, `concurrency` unary Echo calls always in
// flight (each completion starts the next) for `duration` ms. Latency = call start → callback.
// Every reply is checked to echo its request. Prints one JSON object:
//   { calls, errors, mismatches, errorCodes, firstError, seconds, cps, p50, p90, p99, p999, max, mean, clientCpuUsPerCall }
//   node bench/lib/grpc-load.mjs --target 127.0.0.1:8000 [--concurrency 16] [--duration 10000] [--size 32]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { summarize } from './paced.mjs';

const PROTO = join(dirname(dirname(fileURLToPath(import.meta.url))), 'fixtures/echo.proto');

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10000' },
    size: { type: 'string', default: '32' },
  },
});
if (!values.target) {
  console.error('usage: grpc-load.mjs --target HOST:PORT [--concurrency 16] [--duration 10000] [--size 32]');
  process.exit(2);
}
const concurrency = Math.max(1, Number(values.concurrency));
const durationMs = Math.max(100, Number(values.duration));
const message = 'x'.repeat(Math.max(1, Number(values.size)));

const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true }));
// Retries off: the retry layer only adds per-call work here (no call is ever retried).
const client = new pkg.capa.bench.Echo(values.target, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 });
await new Promise((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const samples = [];
let errors = 0;
let mismatches = 0;
let firstError = null;
const errorCodes = {};
let seq = 0;

function call() {
  return new Promise((resolve) => {
    const mySeq = ++seq;
    const sent = nowMs();
    client.Unary({ message, seq: mySeq }, (err, res) => {
      const ms = nowMs() - sent;
      if (err) {
        errors++;
        errorCodes[err.code] = (errorCodes[err.code] ?? 0) + 1;
        firstError ??= `${err.code} ${err.details ?? err.message}`;
      } else {
        if (res.message !== message || res.seq !== mySeq) mismatches++;
        samples.push(ms);
      }
      resolve();
    });
  });
}

const cpu0 = process.cpuUsage();
const t0 = nowMs();
const end = t0 + durationMs;
async function worker() {
  while (nowMs() < end) await call();
}
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (nowMs() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
client.close();
const calls = samples.length;
process.stdout.write(
  `${JSON.stringify({
    calls,
    errors,
    mismatches,
    errorCodes,
    firstError,
    seconds,
    cps: calls / seconds,
    ...summarize(samples),
    clientCpuUsPerCall: calls ? (cpu.user + cpu.system) / calls : null,
  })}\n`,
);
