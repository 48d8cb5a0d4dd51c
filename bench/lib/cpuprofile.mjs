#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof): self time per function (name, file:line) and per
// file/module, as shares of the non-idle time. Used by the tcp and grpc suites' --profile pass;
// also a script:
//   node bench/lib/cpuprofile.mjs file.cpuprofile [--top 15]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

function shortUrl(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  return url.replace(/^file:\/\//, '');
}

/** { totalMs, busyMs, functions: [{ name, where, ms, share }], files: [{ file, ms, share }] } */
export function summarizeProfile(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0) / 1000;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const fn = new Map();
  const files = new Map();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of self) {
    const cf = byId.get(id)?.callFrame ?? {};
    totalMs += ms;
    if (cf.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const file = shortUrl(cf.url) || cf.functionName || '(native)';
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}\u0000${where}`;
    fn.set(key, (fn.get(key) ?? 0) + ms);
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  const share = (ms) => (busyMs > 0 ? ms / busyMs : 0);
  return {
    totalMs,
    busyMs,
    functions: [...fn]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => {
        const [name, where] = k.split('\u0000');
        return { name, where, ms, share: share(ms) };
      }),
    files: [...files]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, ms]) => ({ file, ms, share: share(ms) })),
  };
}

export function profileMarkdown(sum) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `busy ${(sum.busyMs / 1000).toFixed(2)} s of ${(sum.totalMs / 1000).toFixed(2)} s profiled (self time, share of busy):`,
    '',
    '| function | where | self ms | share |',
    '| --- | --- | ---: | ---: |',
    ...sum.functions.map((f) => `| \`${f.name}\` | ${f.where ? `\`${f.where}\`` : ''} | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
    '',
    '| file / module | self ms | share |',
    '| --- | ---: | ---: |',
    ...sum.files.map((f) => `| \`${f.file}\` | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
  if (!positionals[0]) {
    console.error('usage: cpuprofile.mjs FILE.cpuprofile [--top 15]');
    process.exit(2);
  }
  const sum = summarizeProfile(JSON.parse(readFileSync(positionals[0], 'utf8')), Number(values.top));
  process.stdout.write(`${profileMarkdown(sum)}\n`);
}
