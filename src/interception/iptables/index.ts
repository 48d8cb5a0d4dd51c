export { DEFAULT_CAPTURE_OPTIONS, FlagError, IPTABLES_USAGE, parseIptablesFlags } from './flags.js';
export type { CaptureOptions, Cidr, IpFamily, IptablesCommand } from './flags.js';
export { CHAINS, cleanupRules, generateRules, parseNatState, restoreText, ruleLines, withJumpRemoval } from './rules.js';
export type { GeneratedRules, NatState } from './rules.js';
export { ApplyError, applyCapture, cleanup, spawnExec } from './apply.js';
export type { ApplyDeps, ApplyResult, CleanupResult, Exec, ExecResult } from './apply.js';
export { runIptablesCli } from './cli.js';
