#!/usr/bin/env node
// Baseline for the tcp suite: the smallest Node TCP proxy — net.createServer + socket.pipe both
// ways, nothing else (no byte counting, no metrics). What plain Node streams can do on this box.
//   LISTEN_PORT=9001 UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=9000 node bench/peers/tcp-pipe.mjs
import net from 'node:net';

const server = net.createServer((down) => {
  const up = net.connect({ host: process.env.UPSTREAM_HOST || '127.0.0.1', port: Number(process.env.UPSTREAM_PORT) });
  down.pipe(up);
  up.pipe(down);
  up.on('error', () => down.destroy());
  down.on('error', () => up.destroy());
  up.on('close', () => down.destroy());
  down.on('close', () => up.destroy());
});
server.listen(Number(process.env.LISTEN_PORT), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
