#!/usr/bin/env node
// Closed-loop gRPC load: `concurrency` unary Echo calls always in flight (each completion starts
// the next) for `duration` ms. Latency = call start → reply. Every reply is checked to echo its
// request. Two clients:
//   --client grpcjs (default): one @grpc/grpc-js channel, objects serialised per call — "what an
//     app on @grpc/grpc-js sees" (several times a sidecar's CPU per call on the load core);
//   --client h2: bench/lib/h2grpc.mjs on node:http2, `--sessions` h2c connections, each stream's
//     request encoded once up front; reply bytes compared with the request bytes, grpc-status
//     read from the trailers.
// Prints one JSON object:
//   { calls, errors, mismatches, errorCodes, firstError, seconds, cps, p50, p90, p99, p999, max, mean, clientCpuUsPerCall }
//   node bench/lib/grpc-load.mjs --target 127.0.0.1:8000 [--client grpcjs|h2] [--sessions 4] [--concurrency 16] [--duration 10000] [--size 32]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { summarize } from './paced.mjs';
import { connectH2Grpc, grpcFrame } from './h2grpc.mjs';

const PROTO = join(dirname(dirname(fileURLToPath(import.meta.url))), 'fixtures/echo.proto');
export const ECHO_PATH = '/capa.bench.Echo/Unary';

/** The Echo definition as proto-loader sees it (its serialisers are what @grpc/grpc-js sends). */
export function echoDefinition() {
  return protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
}

/** The framed bytes of one EchoMessage request, as @grpc/grpc-js would send them. */
export function echoFrame(message, seq) {
  return grpcFrame(echoDefinition()['capa.bench.Echo'].Unary.requestSerialize({ message, seq }));
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** grpc-js: one channel, retries off (the retry layer only adds per-call work; nothing is retried). */
async function grpcjsCaller(target, message) {
  const pkg = grpc.loadPackageDefinition(echoDefinition());
  const client = new pkg.capa.bench.Echo(target, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0 });
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  let seq = 0;
  const call = () =>
    new Promise((resolve) => {
      const mySeq = ++seq;
      client.Unary({ message, seq: mySeq }, (err, res) =>
        resolve(err ? { err: { code: err.code, details: err.details ?? err.message } } : { ok: res.message === message && res.seq === mySeq }),
      );
    });
  return { call: () => call(), close: () => client.close() };
}

/** h2: stream i of `concurrency` sends its own pre-encoded request (seq i) on session i % sessions. */
async function h2Caller(target, message, sessions, concurrency) {
  const client = await connectH2Grpc(target, { sessions });
  const frames = Array.from({ length: concurrency }, (_, i) => echoFrame(message, i + 1));
  const call = async (i) => {
    try {
      const reply = await client.unary(ECHO_PATH, frames[i], i);
      return { ok: reply.equals(frames[i].subarray(5)) };
    } catch (e) {
      return { err: { code: e.code ?? 'TRANSPORT', details: e.details ?? e.message } };
    }
  };
  return { call, close: () => client.close() };
}

async function main() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      client: { type: 'string', default: 'grpcjs' },
      sessions: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '16' },
      duration: { type: 'string', default: '10000' },
      size: { type: 'string', default: '32' },
    },
  });
  if (!values.target || !['grpcjs', 'h2'].includes(values.client)) {
    console.error('usage: grpc-load.mjs --target HOST:PORT [--client grpcjs|h2] [--sessions 4] [--concurrency 16] [--duration 10000] [--size 32]');
    process.exit(2);
  }
  const concurrency = Math.max(1, Number(values.concurrency));
  const durationMs = Math.max(100, Number(values.duration));
  const message = 'x'.repeat(Math.max(1, Number(values.size)));
  const caller =
    values.client === 'h2' ? await h2Caller(values.target, message, Math.max(1, Number(values.sessions)), concurrency) : await grpcjsCaller(values.target, message);

  const samples = [];
  let errors = 0;
  let mismatches = 0;
  let firstError = null;
  const errorCodes = {};
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  const end = t0 + durationMs;
  async function worker(i) {
    while (nowMs() < end) {
      const sent = nowMs();
      const r = await caller.call(i);
      const ms = nowMs() - sent;
      if (r.err) {
        errors++;
        errorCodes[r.err.code] = (errorCodes[r.err.code] ?? 0) + 1;
        firstError ??= `${r.err.code} ${r.err.details}`;
      } else {
        if (!r.ok) mismatches++;
        samples.push(ms);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const seconds = (nowMs() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  caller.close();
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
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
