#!/usr/bin/env node
// Single-stream bulk TCP client for the tcp suite: connects, sends an 8-byte length header and
// then `bytes` bytes as fast as the socket takes them (one random `chunk`-sized buffer written
// over and over with backpressure, so nothing large is held in memory), and stops the clock when
// the sink (bench/lib/tcp-sink.mjs) confirms it has received them all. Prints one JSON object:
//   { bytes, seconds, gbps, gibps, clientCpuS }
//   node bench/lib/tcp-push.mjs --port 9000 [--host 127.0.0.1] [--bytes 2147483648] [--chunk 1048576]
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    bytes: { type: 'string', default: String(2 ** 31) },
    chunk: { type: 'string', default: String(2 ** 20) },
  },
});
const total = Number(values.bytes);
const chunk = randomBytes(Math.max(1024, Number(values.chunk)));

const sock = net.connect({ host: values.host, port: Number(values.port) });
await once(sock, 'connect');
let reply = '';
const acked = new Promise((resolve, reject) => {
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    reply += d;
    if (reply.includes('\n')) resolve(JSON.parse(reply.slice(0, reply.indexOf('\n'))));
  });
  sock.on('close', () => reject(new Error(`connection closed before the sink confirmed (reply so far: ${JSON.stringify(reply)})`)));
  sock.on('error', reject);
});
acked.catch(() => {});

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const cpu0 = process.cpuUsage();
const t0 = nowMs();
const head = Buffer.alloc(8);
head.writeBigUInt64BE(BigInt(total));
sock.write(head);
let sent = 0;
while (sent < total) {
  const n = Math.min(chunk.length, total - sent);
  sent += n;
  if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
    await Promise.race([once(sock, 'drain'), acked]);
  }
}
const ack = await acked;
const seconds = (nowMs() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
sock.destroy();
if (ack.bytes !== total) {
  console.error(`sink received ${ack.bytes} bytes, expected ${total}`);
  process.exit(1);
}
process.stdout.write(
  `${JSON.stringify({ bytes: total, seconds, gbps: total / seconds / 1e9, gibps: total / seconds / 2 ** 30, clientCpuS: (cpu.user + cpu.system) / 1e6 })}\n`,
);
