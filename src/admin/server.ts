/**
 * The admin server (Envoy's admin interface, 127.0.0.1:15000 by default). Not on the hot path:
 * plain node:http, one small handler per endpoint. Mutating endpoints require POST (405
 * otherwise, as Envoy); unknown paths get 404 with the list of endpoints.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { clustersJson, clustersText } from './clusters-format.js';
import { configDump } from './config-dump.js';
import { listen } from './listen.js';
import type { AdminServer, AdminServerOptions, ServerState } from './types.js';

/** Envoy's level names and pino's, mapped to pino's. */
const LEVEL_ALIASES: Readonly<Record<string, string>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
  off: 'silent',
  silent: 'silent',
};

interface Endpoint {
  readonly help: string;
  readonly mutates: boolean;
  readonly handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache, max-age=0', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

let packageVersion: string | undefined;
function defaultVersion(): string {
  if (packageVersion === undefined) {
    try {
      packageVersion = String((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch {
      packageVersion = 'unknown';
    }
  }
  return packageVersion;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { sources, logger } = opts;
  const version = opts.version ?? defaultVersion();
  const startedAt = Date.now();
  let quitting = false;
  let lastSnapshot: unknown;
  let snapshotSeenAt = new Date();

  const state = (): ServerState => {
    if (quitting) return 'DRAINING';
    if (sources.state) return sources.state();
    return sources.ready() ? 'LIVE' : 'PRE_INITIALIZING';
  };
  const readiness = (_req: IncomingMessage, res: ServerResponse): void => {
    const st = state();
    send(res, st === 'LIVE' ? 200 : 503, `${st}\n`);
  };
  const metrics = async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    send(res, 200, await sources.metrics(), sources.metricsContentType);
  };
  const loggingText = (): string => `active loggers:\n  capa: ${sources.getLogLevel()}\n`;

  const endpoints: Record<string, Endpoint> = {
    '/clusters': {
      help: 'upstream cluster status (?format=json)',
      mutates: false,
      handle: (_req, res, url) => {
        void Promise.resolve(sources.clusters()).then(
          (list) => {
            if (url.searchParams.get('format') === 'json') send(res, 200, clustersJson(list), 'application/json');
            else send(res, 200, clustersText(list));
          },
          (e: Error) => send(res, 500, `cannot read cluster status: ${e.message}\n`),
        );
      },
    },
    '/config_dump': {
      help: 'dump current configuration (?include_eds, ?resource=)',
      mutates: false,
      handle: (_req, res, url) => {
        const snap = sources.snapshot();
        if (snap !== lastSnapshot) {
          lastSnapshot = snap;
          snapshotSeenAt = new Date();
        }
        const body = configDump(
          snap,
          sources.rawConfig?.(),
          { includeEds: url.searchParams.has('include_eds'), resource: url.searchParams.get('resource') ?? undefined },
          snapshotSeenAt,
        );
        send(res, 200, body, 'application/json');
      },
    },
    '/healthz': { help: 'print server state (200 when LIVE, 503 otherwise)', mutates: false, handle: readiness },
    '/help': { help: 'print out list of admin commands', mutates: false, handle: (_req, res) => send(res, 200, helpText()) },
    '/logging': {
      help: 'query/change logging levels (POST ?level=trace|debug|info|warning|error|critical|off)',
      mutates: true,
      handle: (req, res, url) => {
        const level = url.searchParams.get('level');
        if (level === null) return send(res, 200, loggingText());
        if (req.method !== 'POST') return send(res, 405, 'This endpoint requires POST to change the level\n');
        const mapped = LEVEL_ALIASES[level.toLowerCase()];
        if (!mapped || !sources.setLogLevel(mapped)) {
          return send(res, 400, `error: unknown log level "${level}"; allowed levels: ${Object.keys(LEVEL_ALIASES).join(', ')}\n\n${loggingText()}`);
        }
        logger.info({ level: mapped }, 'log level changed via admin');
        send(res, 200, loggingText());
      },
    },
    '/quitquitquit': {
      help: 'exit the server (graceful drain)',
      mutates: true,
      handle: (req, res) => {
        if (req.method !== 'POST') return send(res, 405, 'This endpoint requires POST\n');
        quitting = true;
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('OK\n', () => {
          logger.warn('quitquitquit: draining and exiting');
          sources.quit();
        });
      },
    },
    '/ready': { help: 'print server state (LIVE, DRAINING, PRE_INITIALIZING); 503 unless LIVE', mutates: false, handle: readiness },
    '/server_info': {
      help: 'print server version/status information',
      mutates: false,
      handle: (_req, res) => {
        const up = `${Math.floor((Date.now() - startedAt) / 1000)}s`;
        const snap = sources.snapshot() as { node?: unknown } | undefined;
        const info = {
          version,
          state: state(),
          hot_restart_version: 'disabled',
          command_line_options: { argv: process.argv.slice(2), node_args: process.execArgv },
          node: snap?.node ?? {},
          uptime_current_epoch: up,
          uptime_all_epochs: up,
        };
        send(res, 200, `${JSON.stringify(info, null, 2)}\n`, 'application/json');
      },
    },
    '/stats': { help: 'print server stats (Prometheus text)', mutates: false, handle: metrics },
    '/stats/prometheus': { help: 'print server stats in prometheus format', mutates: false, handle: metrics },
  };
  for (const [path, h] of Object.entries(sources.extraHandlers ?? {})) {
    endpoints[path] = { help: 'extension endpoint', mutates: false, handle: (req, res) => h(req, res) };
  }
  const helpText = (): string =>
    `admin commands are:\n${Object.keys(endpoints)
      .sort()
      .map((p) => `  ${p}: ${endpoints[p]!.help}`)
      .join('\n')}\n`;

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const ep = url.pathname === '/' ? endpoints['/help'] : endpoints[url.pathname];
    if (!ep) return send(res, 404, `invalid path. ${helpText()}`);
    if (ep.mutates && req.method !== 'POST' && req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'This endpoint requires POST\n');
    }
    void (async () => {
      try {
        await ep.handle(req, res, url);
      } catch (err) {
        logger.error({ err, path: url.pathname }, 'admin handler failed');
        if (!res.headersSent) send(res, 500, 'internal error\n');
        else res.destroy();
      }
    })();
  });
  const listening = await listen(server, opts.host, opts.port);
  logger.info({ host: opts.host, port: listening.port }, 'admin server listening');
  return listening;
}

