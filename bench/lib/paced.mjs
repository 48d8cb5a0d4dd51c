#!/usr/bin/env node
// Low-load latency probe: `conns` keep-alive connections, each sending one GET every
// `intervalMs` (paced on a fixed schedule, not back-to-back), for `durationMs`.
// Latency is measured from the moment a request is handed to the socket to the end of the
// response body (timer jitter of the pacing itself is not charged to the peer). A send that
// falls more than one interval behind schedule is counted as `late` and the schedule restarts
// from now (no catch-up bursts) — at this load that should stay near 0; if it does not, the
// client or the peer stalled and the numbers are not clean low-load numbers. Run as a script (the harness pins it with `taskset -c 1`):
//
//   node bench/lib/paced.mjs --url http://127.0.0.1:8080/ [--conns 4] [--interval 5] [--duration 5000]
//
// prints one JSON object: { count, errors, non2xx, late, p50, p90, p99, p999, max, mean } (ms).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1);
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.at(-1) ?? null,
    mean,
  };
}

function request(agent, url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 5000 }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function paced({ url, conns = 4, intervalMs = 5, durationMs = 5000 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const samples = [];
  let errors = 0;
  let non2xx = 0;
  let late = 0;
  const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
  // Open the connections first so connection setup is not in the samples.
  await Promise.all(Array.from({ length: conns }, () => request(agent, url).catch(() => 0)));
  const t0 = nowMs();
  const end = t0 + durationMs;
  async function loop(i) {
    // Stagger the connections evenly within one interval.
    let due = t0 + (i * intervalMs) / conns;
    while (due < end) {
      const wait = due - nowMs();
      if (wait > 0) await sleep(wait);
      else if (wait < -intervalMs) {
        // Stalled (slow response or this client descheduled): re-synchronise instead of
        // bursting back-to-back requests to catch up, which would no longer be low load.
        late++;
        due = nowMs();
      }
      const sent = nowMs();
      try {
        const status = await request(agent, url);
        if (status < 200 || status > 299) non2xx++;
        samples.push(nowMs() - sent);
      } catch {
        errors++;
      }
      due += intervalMs;
    }
  }
  await Promise.all(Array.from({ length: conns }, (_, i) => loop(i)));
  agent.destroy();
  return { count: samples.length, errors, non2xx, late, ...summarize(samples) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      conns: { type: 'string', default: '4' },
      interval: { type: 'string', default: '5' },
      duration: { type: 'string', default: '5000' },
    },
  });
  if (!values.url) {
    console.error('usage: paced.mjs --url URL [--conns 4] [--interval 5] [--duration 5000]');
    process.exit(2);
  }
  const result = await paced({
    url: values.url,
    conns: Number(values.conns),
    intervalMs: Number(values.interval),
    durationMs: Number(values.duration),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
