/** Command-line parsing for `capa-runtime`. */
import { parseArgs } from 'node:util';

export const USAGE = `capa-runtime — sidecar proxy, service-mesh data plane and application runtime

Usage:
  capa-runtime --config sidecar.yaml [--concurrency N] [--log-level LEVEL]
  capa-runtime --config sidecar.yaml --validate
  capa-runtime --help | --version
  capa-runtime iptables [--dry-run | --cleanup] [istio-iptables flags]   (capa-runtime iptables --help)

Options:
  --config PATH        YAML configuration (default: $CAPA_CONFIG or ./sidecar.yaml)
  --validate           check the configuration, print the problems, exit 0 (valid) or 1
  --concurrency N      data-plane worker processes (overrides 'concurrency:' in the file)
  --log-level LEVEL    trace|debug|info|warn|error|fatal (overrides 'logLevel:')
  --policy-dir PATH    watched directory of FlowControlPolicy YAML files (repeatable; adds to
                       'flowControl.policyDirs:')
  --help, -h           this text
  --version            print the version

Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT drain (drainTime, default 45s) and exit 0.
`;

export interface CliOptions {
  readonly config: string;
  readonly validate: boolean;
  readonly concurrency: number | undefined;
  readonly logLevel: string | undefined;
  /** `--policy-dir`, in order (relative to the working directory). */
  readonly policyDirs: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
}

export class UsageError extends Error {}

export function parseCli(argv: readonly string[], env: Record<string, string | undefined>): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string' },
        validate: { type: 'boolean', default: false },
        concurrency: { type: 'string' },
        'log-level': { type: 'string' },
        'policy-dir': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nRun capa-runtime --help for the options.`);
  }
  const v = parsed.values;
  let concurrency: number | undefined;
  if (v.concurrency !== undefined) {
    concurrency = Number(v.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new UsageError(`--concurrency must be an integer between 1 and 64, got "${v.concurrency}"`);
    }
  }
  return {
    config: v.config ?? env.CAPA_CONFIG ?? 'sidecar.yaml',
    validate: v.validate ?? false,
    concurrency,
    logLevel: v['log-level'],
    policyDirs: v['policy-dir'] ?? [],
    help: v.help ?? false,
    version: v.version ?? false,
  };
}
