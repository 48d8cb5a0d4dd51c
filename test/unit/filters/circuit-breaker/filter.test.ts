import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { Breaker, CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, type BreakerSettings } from '../../../../src/filters/circuit-breaker/index.js';
import { CircuitBreakerFilter, isFailure } from '../../../../src/filters/circuit-breaker/filter.js';
import { newStreamInfo } from '../../../../src/proxy/stream-info.js';
import type { HttpStream, LocalReplyOptions } from '../../../../src/filters/types.js';

const settings = (o: Partial<BreakerSettings> = {}): BreakerSettings => ({
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  resetTimeoutMs: 50,
  timeoutMs: 0,
  rollingCountTimeoutMs: 10_000,
  rollingCountBuckets: 10,
  ...o,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = pino({ level: 'silent' });

function stream(): HttpStream & { replies: { status: number; body: string; opts?: LocalReplyOptions }[] } {
  const replies: { status: number; body: string; opts?: LocalReplyOptions }[] = [];
  const info = newStreamInfo();
  return {
    info,
    replies,
    sendLocalReply(status: number, body: string, opts?: LocalReplyOptions) {
      replies.push({ status, body, opts });
      info.responseCode = status;
      info.responseFlags = opts?.flag ?? '';
    },
  } as unknown as HttpStream & { replies: typeof replies };
}

const breakers: Breaker[] = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
});
function breaker(o: Partial<BreakerSettings> = {}, registry = new Registry()): Breaker {
  const b = new Breaker(settings(o), { cluster: 'c', route: '' }, registry, logger);
  breakers.push(b);
  return b;
}

/** Let opossum's promise callbacks run. */
const flush = () => sleep(0);

describe('failure classification', () => {
  it('5xx and upstream-failure flags fail; 4xx and downstream resets do not', () => {
    const i = newStreamInfo();
    i.responseCode = 200;
    expect(isFailure(i)).toBe(false);
    i.responseCode = 404;
    expect(isFailure(i)).toBe(false);
    i.responseCode = 503;
    expect(isFailure(i)).toBe(true);
    i.responseCode = 0;
    i.responseFlags = 'DC';
    expect(isFailure(i)).toBe(false);
    i.responseFlags = 'URX,UF';
    expect(isFailure(i)).toBe(true);
  });
});

describe('breaker state machine (opossum)', () => {
  it('stays closed below volumeThreshold, opens above the error threshold, then half-opens and closes', async () => {
    const registry = new Registry();
    const b = breaker({}, registry);
    for (let i = 0; i < 3; i++) b.admit()!(true);
    await flush();
    expect(b.state).toBe(CIRCUIT_CLOSED); // 3 < volumeThreshold 4
    b.admit()!(true);
    await flush();
    expect(b.state).toBe(CIRCUIT_OPEN);
    expect(b.admit()).toBeNull();
    expect(await registry.getSingleMetricAsString('capa_circuit_rejected_total')).toMatch(/capa_circuit_rejected_total\{cluster="c",route=""\} 1/);
    expect(await registry.getSingleMetricAsString('capa_circuit_state')).toMatch(/\} 1$/m);

    await sleep(70);
    expect(b.state).toBe(CIRCUIT_HALF_OPEN);
    expect(await registry.getSingleMetricAsString('capa_circuit_state')).toMatch(/\} 2$/m);
    const probe = b.admit();
    expect(probe).not.toBeNull();
    expect(b.admit()).toBeNull(); // only one probe at a time
    probe!(false);
    await flush();
    expect(b.state).toBe(CIRCUIT_CLOSED);
    expect(await registry.getSingleMetricAsString('capa_circuit_state')).toMatch(/\} 0$/m);
  });

  it('a failed probe re-opens the breaker', async () => {
    const b = breaker({ volumeThreshold: 1 });
    b.admit()!(true);
    await flush();
    expect(b.state).toBe(CIRCUIT_OPEN);
    await sleep(70);
    b.admit()!(true);
    await flush();
    expect(b.state).toBe(CIRCUIT_OPEN);
    expect(b.admit()).toBeNull();
  });

  it('successes keep it closed', async () => {
    const b = breaker();
    for (let i = 0; i < 10; i++) b.admit()!(i % 3 === 0);
    await flush();
    expect(b.state).toBe(CIRCUIT_CLOSED);
  });

  it('a request slower than timeout counts as a failure', async () => {
    const b = breaker({ volumeThreshold: 1, timeoutMs: 20 });
    const settle = b.admit()!;
    await sleep(40);
    expect(b.state).toBe(CIRCUIT_OPEN);
    settle(false); // too late: ignored
    await flush();
    expect(b.state).toBe(CIRCUIT_OPEN);
  });
});

describe('CircuitBreakerFilter', () => {
  it('replies 503 circuit open with header, flag UO and details when open; settles in onComplete', async () => {
    const b = breaker({ volumeThreshold: 1 });
    const f = new CircuitBreakerFilter({ breakerFor: () => b });
    const s1 = stream();
    expect(f.onRequestHeaders(s1)).toBe('continue');
    s1.info.responseCode = 502;
    f.onComplete(s1);
    await flush();
    const f2 = new CircuitBreakerFilter({ breakerFor: () => b });
    const s2 = stream();
    expect(f2.onRequestHeaders(s2)).toBe('stop');
    expect(s2.replies[0]).toMatchObject({ status: 503, body: 'circuit open', opts: { flag: 'UO', details: 'circuit_open', grpcStatus: 14, headers: { 'x-capa-circuit': 'open' } } });
    f2.onComplete(s2); // rejected request: nothing to settle
  });

  it('passes through when no breaker applies', () => {
    const f = new CircuitBreakerFilter({ breakerFor: () => null });
    expect(f.onRequestHeaders(stream())).toBe('continue');
  });
});
