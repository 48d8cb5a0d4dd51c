#!/usr/bin/env node
// TCP sink for the tcp suite. Each connection starts with an 8-byte big-endian length N, then N
// bytes; when all N have arrived the sink answers one JSON line {"bytes": N} (in band, so it
// needs no half-close through the proxy) and keeps discarding anything else.
// Prints "listening <port>" when bound.
//   node bench/lib/tcp-sink.mjs --port 9000
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const server = net.createServer((sock) => {
  let head = Buffer.alloc(0);
  let expected = -1;
  let got = 0;
  let acked = false;
  sock.on('data', (d) => {
    if (expected < 0) {
      head = Buffer.concat([head, d]);
      if (head.length < 8) return;
      expected = Number(head.readBigUInt64BE(0));
      got = head.length - 8;
      head = null;
    } else got += d.length;
    if (!acked && got >= expected) {
      acked = true;
      sock.write(`${JSON.stringify({ bytes: got })}\n`);
    }
  });
  sock.on('error', () => sock.destroy());
});
server.listen(Number(values.port), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
