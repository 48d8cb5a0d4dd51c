#!/usr/bin/env node
// Builds native/build/Release/original_dst.node with the node-gyp that npm bundles, against the
// Node headers already on this machine (npm's `nodedir`, else <node prefix>/include/node): never
// a download. Run by `npm install`/`npm ci` (the `install` script) and by `npm run build:native`.
// Without --strict it never fails: it prints one line and the runtime falls back to the Host
// header for original destinations. CAPA_NATIVE_VERBOSE=1 prints node-gyp's whole output.
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes('--strict');
const verbose = process.env.CAPA_NATIVE_VERBOSE === '1';
const output = join(here, 'build', 'Release', 'original_dst.node');

function giveUp(reason, log) {
  if (log) {
    mkdirSync(join(here, 'build'), { recursive: true });
    writeFileSync(join(here, 'build', 'build.log'), log);
  }
  const where = log ? ' (log: native/build/build.log)' : '';
  console.log(`capa-runtime: native addon not built (${reason})${where}; falling back to the Host header for original destinations`);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') giveUp(`SO_ORIGINAL_DST is Linux-only, this is ${process.platform}`);

/** npm's bundled node-gyp: npm tells its scripts where it is; else find npm beside node or on PATH. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const rel = join('node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const prefix = dirname(dirname(process.execPath));
  candidates.push(join(prefix, 'lib', rel), join(prefix, rel));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || !existsSync(join(dir, 'npm'))) continue;
    try {
      // …/npm/bin/npm-cli.js → …/npm/node_modules/node-gyp/bin/node-gyp.js
      const npmCli = realpathSync(join(dir, 'npm'));
      candidates.push(join(dirname(dirname(npmCli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      /* a dangling link: try the next */
    }
  }
  candidates.push(join(here, '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => existsSync(c));
}

/** Headers without a download: npm's nodedir (env inside npm scripts, else `npm config get`), else node's own prefix. */
function findNodeDir() {
  const hasHeaders = (d) => existsSync(join(d, 'include', 'node', 'node_api.h')) && existsSync(join(d, 'include', 'node', 'common.gypi'));
  let configured = process.env.npm_config_nodedir;
  if (!configured) {
    try {
      configured = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 }).trim();
    } catch {
      configured = '';
    }
    if (configured === 'undefined' || configured === 'null') configured = '';
  }
  if (configured && hasHeaders(configured)) return configured;
  const prefix = dirname(dirname(process.execPath));
  if (hasHeaders(prefix)) return prefix;
  return undefined;
}

const gyp = findNodeGyp();
if (!gyp) giveUp("npm's bundled node-gyp was not found");
const nodedir = findNodeDir();
if (!nodedir) giveUp(`no Node headers on this machine (set npm's nodedir, or install the headers under ${dirname(dirname(process.execPath))}/include/node)`);

const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], {
  cwd: here,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (r.error) giveUp(`node-gyp could not run: ${r.error.message}`);
if (r.status !== 0 || !existsSync(output)) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const last = log.split('\n').map((l) => l.trim()).filter((l) => /error/i.test(l) && !/^gyp ERR! (cwd|node -v|node-gyp -v|not ok|System|command)/.test(l));
  giveUp(`node-gyp rebuild failed${last.length > 0 ? `: ${last[0]}` : ` with status ${r.status}`}`, log || undefined);
}
console.log(`capa-runtime: built ${join('native', 'build', 'Release', 'original_dst.node')} (node-gyp ${gyp}, headers ${nodedir})`);
