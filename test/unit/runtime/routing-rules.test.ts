/** Dapr's routing rules: compile-time checks, first-match order, what a failing expression does. */
import { describe, expect, it } from 'vitest';
import { RoutingRuleError, compileRoutingRules, firstMatch } from '../../../src/runtime/routing-rules.js';

const abs = (p: string): string => (p.startsWith('/') ? p : `/${p}`);

/** A CloudEvent as the subscriber parses it from the stored envelope. */
const event = {
  id: 'e-1',
  source: 'checkout',
  type: 'order.placed',
  specversion: '1.0',
  datacontenttype: 'application/json',
  topic: 'orders',
  pubsubname: 'pubsub',
  time: '2026-01-02T03:04:05.000Z',
  region: 'eu',
  data: { amount: 150, items: ['book', 'pen'], customer: { tier: 'gold' } },
};

async function route(matches: string[], ev: unknown = event): Promise<{ index: number; errors: [number, string][] }> {
  const rules = await compileRoutingRules(matches.map((m, i) => ({ match: m, path: `r${i}` })), abs);
  const errors: [number, string][] = [];
  const index = firstMatch(rules, ev, (rule, reason) => errors.push([rule, reason]));
  return { index, errors };
}

describe('routing rules', () => {
  it('CloudEvent attributes, extension attributes and JSON data are visible as event.*', async () => {
    for (const m of [
      "event.type == 'order.placed'",
      'event.source == "checkout" && event.id == "e-1"',
      "event.topic == 'orders' && event.pubsubname == 'pubsub'",
      "event.region == 'eu'",
      'event.data.amount > 100',
      'event.data.amount == 150',
      "'pen' in event.data.items && size(event.data.items) == 2",
      "event.data.customer.tier.startsWith('go')",
      "event.type.matches('^order\\\\.')",
      'has(event.data.customer) && !has(event.data.coupon)',
      "timestamp(event.time) > timestamp('2026-01-01T00:00:00Z')",
    ]) {
      expect((await route([m])).index, m).toBe(0);
    }
    expect((await route(["event.data == 'plain text'"], { ...event, data: 'plain text' })).index).toBe(0);
  });

  it('the first rule that matches wins, in order; an empty match always matches; -1 when none does', async () => {
    expect((await route(["event.type == 'x'", 'event.data.amount > 100', 'event.data.amount > 10'])).index).toBe(1);
    expect((await route(['event.data.amount > 10', 'event.data.amount > 100'])).index).toBe(0);
    expect((await route(["event.type == 'x'", '', 'true'])).index).toBe(1);
    expect((await route(["event.type == 'x'", 'event.data.amount < 0'])).index).toBe(-1);
  });

  it('an expression that fails on an event (missing key, type mismatch) or yields no bool is no match for that rule; later rules still apply', async () => {
    const r = await route(['event.data.coupon == "X"', 'event.data.customer + 1 == 2', 'event.data', "event.type == 'order.placed'"]);
    expect(r.index).toBe(3);
    expect(r.errors.map(([i]) => i)).toEqual([0, 1, 2]);
    expect(r.errors[0]![1]).toMatch(/coupon/);
    expect(r.errors[2]![1]).toMatch(/yielded object, not bool/);
    expect(r.errors.every(([, reason]) => !reason.includes('\n'))).toBe(true);
  });

  it('compiled once: a syntax error, an unknown variable, a non-bool result and a rule without a path are refused with the rule named', async () => {
    const fails = async (rules: unknown[]): Promise<RoutingRuleError> => {
      const e = await compileRoutingRules(rules, abs).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RoutingRuleError);
      return e as RoutingRuleError;
    };
    const syntax = await fails([{ match: 'true', path: '/a' }, { match: "event.type == 'a' &&", path: '/b' }]);
    expect(syntax).toMatchObject({ index: 1, match: "event.type == 'a' &&" });
    expect(syntax.reason).toMatch(/^does not compile: /);
    expect((await fails([{ match: 'type == "a"', path: '/a' }])).reason).toMatch(/does not compile: .*type/);
    expect((await fails([{ match: '"a" + "b"', path: '/a' }])).reason).toBe('evaluates to string, not bool');
    expect((await fails([{ match: 'true', path: '' }])).reason).toMatch(/has no path/);
    expect((await fails([{ match: 7, path: '/a' }])).reason).toMatch(/not a string/);
    expect((await fails(['true'])).reason).toMatch(/not an object/);
  });
});
