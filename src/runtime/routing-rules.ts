/**
 * Dapr's pub/sub routing rules (subscriptions v2: `routes: {rules: [{match, path}], default}`),
 * as dapr/dapr evaluates them (pkg/runtime/pubsub/subscriptions.go createRoutingRule,
 * pkg/runtime/subscription/subscription.go findMatchingRoute):
 * - each `match` is a CEL expression over the variable `event`, the CloudEvent as a map of its
 *   JSON attributes (`event.type`, `event.source`, `event.id`, `event.topic`, extension
 *   attributes, and `event.data` as a JSON value when the data is JSON, else a string);
 * - rules are tried in order and the first whose expression is true gives the path; an empty
 *   `match` always matches (Dapr treats it as the default, wherever it stands);
 * - the subscription's default path (`routes.default`, else `route`) applies when none matched;
 *   without one the event is not delivered (the subscriber acknowledges it).
 *
 * Expressions are compiled once, when the subscription is loaded, with the `event` variable
 * declared: a syntax error, an unknown variable or a result that cannot be a bool is reported
 * then (RoutingRuleError). An expression that fails on one event (a missing key, a type
 * mismatch) or yields no bool counts as no match for that rule; Dapr would instead fail the
 * delivery (dead-letter or retry), which only redelivers the same failure.
 *
 * CEL is @marcbachmann/cel-js (pure JavaScript, no dependencies, ~0.2 µs per evaluation here),
 * loaded with the first subscription that has rules.
 */
import type { Environment, ParseResult } from '@marcbachmann/cel-js';

export interface RoutingRule {
  /** The expression as the app wrote it (trimmed); '' always matches. */
  readonly match: string;
  /** Where a matching event is POSTed. */
  readonly path: string;
  /** The compiled expression; undefined for an empty `match`. Throws when it fails on an event. */
  readonly test: ((vars: { event: unknown }) => unknown) | undefined;
}

/** A rule that cannot be used; `index` is its position in `routes.rules`. */
export class RoutingRuleError extends Error {
  constructor(
    readonly index: number,
    readonly match: string,
    readonly reason: string,
  ) {
    super(`routes.rules[${index}] (match ${JSON.stringify(match)}) ${reason}`);
    this.name = 'RoutingRuleError';
  }
}

let env: Promise<Environment> | undefined;

/** The one CEL environment: `event` is a map; nothing else is declared. */
function celEnvironment(): Promise<Environment> {
  return (env ??= import('@marcbachmann/cel-js').then((cel) => new cel.Environment().registerVariable('event', 'map')));
}

/**
 * Compiles `routes.rules` as the app sent them. Each rule needs a non-empty string `path` (made
 * absolute by `toPath`) and a `match` string (missing = ''). Throws RoutingRuleError for the
 * first rule that cannot be used.
 */
export async function compileRoutingRules(rules: readonly unknown[], toPath: (p: string) => string): Promise<RoutingRule[]> {
  const out: RoutingRule[] = [];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (!r || typeof r !== 'object') throw new RoutingRuleError(i, '', 'is not an object {match, path}');
    const { match: rawMatch, path } = r as { match?: unknown; path?: unknown };
    if (rawMatch !== undefined && rawMatch !== null && typeof rawMatch !== 'string') throw new RoutingRuleError(i, String(rawMatch), 'has a match that is not a string (a CEL expression)');
    const match = (rawMatch ?? '').trim();
    if (typeof path !== 'string' || path.trim() === '') throw new RoutingRuleError(i, match, 'has no path (a non-empty string)');
    out.push({ match, path: toPath(path.trim()), test: match === '' ? undefined : await compile(i, match) });
  }
  return out;
}

async function compile(index: number, match: string): Promise<(vars: { event: unknown }) => unknown> {
  const cel = await celEnvironment();
  let program: ParseResult;
  try {
    program = cel.parse(match);
  } catch (e) {
    throw new RoutingRuleError(index, match, `does not compile: ${firstLine(e)}`);
  }
  const checked = program.check();
  if (!checked.valid) throw new RoutingRuleError(index, match, `does not compile: ${firstLine(checked.error)}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new RoutingRuleError(index, match, `evaluates to ${checked.type}, not bool`);
  return program;
}

/**
 * The index of the first rule that matches `event` (the parsed envelope), or -1. `onError` hears
 * of each rule that failed on this event or did not yield a bool (it then does not match).
 */
export function firstMatch(rules: readonly RoutingRule[], event: unknown, onError: (rule: number, reason: string) => void): number {
  const vars = { event };
  for (let i = 0; i < rules.length; i++) {
    const test = rules[i]!.test;
    if (test === undefined) return i;
    let result: unknown;
    try {
      result = test(vars);
    } catch (e) {
      onError(i, firstLine(e));
      continue;
    }
    if (result === true) return i;
    if (result !== false) onError(i, `the expression yielded ${typeof result}, not bool`);
  }
  return -1;
}

/** The error's message without the library's source excerpt. */
function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const nl = m.indexOf('\n');
  return (nl < 0 ? m : m.slice(0, nl)).trim();
}
