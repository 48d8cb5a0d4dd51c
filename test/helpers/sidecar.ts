/**
 * Start a real sidecar in-process from YAML text (all service ports 0, interception off unless
 * the YAML says otherwise), or run the real CLI as a child process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { pino, type Logger } from 'pino';
import { Sidecar } from '../../src/sidecar.js';
import { request, waitFor } from './http.js';

export const SERVICE_PORTS_ZERO = `
sidecar:
  port: 0
  grpcPort: 0
  metricsPort: 0
  adminPort: 0
  prometheusPort: 0
  readinessPort: 0
`;

export function writeTempConfig(yaml: string, name = 'sidecar.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'capa-test-'));
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

export interface Running {
  sidecar: Sidecar;
  file: string;
  port(listener: string): number;
  stop(): Promise<void>;
}

/** `yaml` should not contain a `sidecar:` block; SERVICE_PORTS_ZERO is prepended. `logger` (e.g. memoryLogger's) lets a test read what was logged. */
export async function startSidecar(yaml: string, opts: { concurrency?: number; logger?: Logger } = {}): Promise<Running> {
  const file = writeTempConfig(SERVICE_PORTS_ZERO + yaml);
  const level = opts.logger?.level ?? process.env.CAPA_TEST_LOG ?? 'silent';
  const logger = opts.logger ?? pino({ level });
  const sidecar = await Sidecar.start({ configPath: file, logger, logLevel: level, concurrency: opts.concurrency });
  return {
    sidecar,
    file,
    port(name: string) {
      const p = sidecar.listenerPort(name);
      if (p === undefined) throw new Error(`no listener ${name}`);
      return p;
    },
    stop: () => sidecar.stop(),
  };
}

export interface Spawned {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

/** Run `node dist/main.js ...args` (built by `npm test` before vitest); stops only this PID. */
export function spawnCli(args: string[], env: Record<string, string> = {}): Spawned {
  return spawnCommand(process.execPath, [MAIN, ...args], env);
}

/** Run a command (e.g. bin/capa-runtime) with its output collected; stops only this PID. */
export function spawnCommand(cmd: string, args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.on('data', (d: Buffer) => stdout.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    stdout,
    stderr,
    exited,
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.pid) process.kill(child.pid, signal);
    },
  };
}

export async function waitReady(adminPort: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => {
    try {
      return (await request(adminPort, { path: '/ready', timeoutMs: 500 })).status === 200;
    } catch {
      return false;
    }
  }, timeoutMs, 50);
}
