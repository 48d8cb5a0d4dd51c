/**
 * One shared asynchronous writer per access-log path (pino.destination = sonic-boom): lines are
 * buffered and written in batches off the request path; a full buffer (16 MiB behind a stuck
 * disk) drops lines rather than growing without bound. Writers are reference-counted by the
 * filters built on them, so a Snapshot swap keeps the same file open.
 */
import pino from 'pino';
import type { Logger } from 'pino';

type Stream = ReturnType<typeof pino.destination>;

export interface AccessLogWriter {
  write(line: string): void;
  /** Drop this holder's reference; the last one flushes and closes the file. */
  release(): void;
}

interface Shared {
  readonly stream: Stream;
  refs: number;
  dropped: number;
}

const writers = new Map<string, Shared>();

const MIN_LENGTH = 4096;
const MAX_BUFFERED = 16 * 1024 * 1024;
const FLUSH_INTERVAL_MS = 1000;

function open(path: string, logger: Logger): Shared {
  const dest = path === '/dev/stdout' ? 1 : path === '/dev/stderr' ? 2 : path;
  const stream = pino.destination({
    dest,
    sync: false,
    minLength: MIN_LENGTH,
    maxLength: MAX_BUFFERED,
    periodicFlush: FLUSH_INTERVAL_MS,
    mkdir: typeof dest === 'string',
    append: true,
  });
  const shared: Shared = { stream, refs: 0, dropped: 0 };
  stream.on('error', (err: Error) => logger.error({ err, path }, 'access log write failed'));
  stream.on('drop', () => {
    if (shared.dropped++ % 10000 === 0) logger.warn({ path, dropped: shared.dropped }, 'access log buffer full, dropping lines');
  });
  return shared;
}

/** The shared writer for `path` (opened on first use). */
export function acquireAccessLogWriter(path: string, logger: Logger): AccessLogWriter {
  let shared = writers.get(path);
  if (!shared) {
    shared = open(path, logger);
    writers.set(path, shared);
  }
  shared.refs++;
  const s = shared;
  let released = false;
  return {
    write: (line) => {
      s.stream.write(line);
    },
    release: () => {
      if (released) return;
      released = true;
      if (--s.refs > 0) return;
      writers.delete(path);
      s.stream.end();
    },
  };
}

/** Write out every buffered line now and wait for it (shutdown, tests). */
export function flushAccessLogs(): Promise<void> {
  return Promise.all(
    [...writers.values()].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.stream.flush(() => resolve());
        }),
    ),
  ).then(() => undefined);
}
