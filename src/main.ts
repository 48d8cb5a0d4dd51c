#!/usr/bin/env node
/**
 * Entry point: `capa-runtime --config sidecar.yaml`. In a data-plane worker process (concurrency
 * > 1) it runs the worker instead.
 */
import './v8-flags.js';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseCli, USAGE, UsageError } from './cli.js';
import { ConfigError } from './errors.js';
import { loadConfigFile } from './config/load.js';
import { runIptablesCli } from './interception/iptables/cli.js';
import { builtinFilterRegistry } from './filters/index.js';
import { createLogger } from './observability/logger.js';
import { Sidecar } from './sidecar.js';
import { runWorker } from './worker.js';
import { tuneMalloc } from './interception/original-dst/index.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number | null> {
  // `capa-runtime iptables [flags]`: traffic capture setup, its own flags (istio-iptables style).
  if (process.argv[2] === 'iptables') return runIptablesCli(process.argv.slice(3));
  let opts;
  try {
    opts = parseCli(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`capa-runtime: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (opts.validate) {
    try {
      const { snapshot } = loadConfigFile(opts.config, { filters: builtinFilterRegistry(), policyDirs: opts.policyDirs });
      const fc = snapshot.flowControl;
      for (const r of fc.rejected) process.stderr.write(`policy ${r.name} (${r.source}) rejected:\n  ${r.errors.join('\n  ')}\n`);
      process.stdout.write(
        `${opts.config}: valid (${snapshot.listeners.length} listeners, ${Object.keys(snapshot.clusters).length} clusters, ${fc.policies.length} flow-control policies${fc.rejected.length ? `, ${fc.rejected.length} rejected` : ''})\n`,
      );
      return fc.rejected.length ? 1 : 0;
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return 1;
      }
      throw e;
    }
  }
  const logger = createLogger(opts.logLevel ?? 'info');
  logger.debug({ malloc: tuneMalloc() }, 'glibc malloc trim threshold / top pad');
  let sidecar: Sidecar;
  try {
    sidecar = await Sidecar.start({ configPath: opts.config, policyDirs: opts.policyDirs, concurrency: opts.concurrency, logger, logLevel: opts.logLevel, exitOnDrain: true });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`capa-runtime: ${e.message}\n`);
      return 1;
    }
    logger.fatal({ error: (e as Error).message }, 'capa-runtime failed to start');
    return 1;
  }
  const onSignal = (sig: string) => () => void sidecar.drain(sig);
  process.on('SIGTERM', onSignal('SIGTERM'));
  process.on('SIGINT', onSignal('SIGINT'));
  process.on('uncaughtException', (e) => logger.error({ error: e.message, stack: e.stack }, 'uncaught exception (request failed, process continues)'));
  return null;
}

if (cluster.isWorker && process.env.CAPA_WORKER === '1') {
  runWorker();
} else {
  main().then(
    (code) => {
      if (code !== null) process.exit(code);
    },
    (e: Error) => {
      process.stderr.write(`capa-runtime: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
