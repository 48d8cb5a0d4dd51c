/**
 * The process logger: pino, structured JSON, one line per event, written to stderr (stdout is
 * the access log's by default). Secrets that may ride along in a logged object — the
 * `authorization` and `cookie` headers — are redacted wherever they appear one or two levels deep.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/** Levels the process logger accepts (pino's names; 'silent' turns logging off). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type ProcessLogLevel = (typeof LOG_LEVELS)[number];

const REDACT_PATHS = [
  'authorization',
  'cookie',
  '*.authorization',
  '*.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

export interface LoggerOptions {
  /** Where lines go; default: stderr (fd 2), written synchronously so nothing is lost on exit. */
  destination?: DestinationStream;
  /** Added to every line (e.g. `{ node: 'sidecar~10.0.0.1~...' }`). */
  base?: Record<string, unknown>;
}

export function isLogLevel(level: string): level is ProcessLogLevel {
  return (LOG_LEVELS as readonly string[]).includes(level);
}

export function createLogger(level: string = 'info', opts: LoggerOptions = {}): Logger {
  if (!isLogLevel(level)) throw new Error(`unknown log level "${level}" (allowed: ${LOG_LEVELS.join(', ')})`);
  const dest = opts.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level,
      base: { pid: process.pid, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    dest,
  );
}

/** Change the level at run time; false (and no change) when `level` is not a known level. */
export function setLogLevel(logger: Logger, level: string): boolean {
  if (!isLogLevel(level)) return false;
  logger.level = level;
  return true;
}
