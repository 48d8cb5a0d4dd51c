/** ComponentManager: a component that fails to initialise is reported and retried, never fatal. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pino } from 'pino';
import { ComponentManager } from '../../../src/components/manager.js';
import { ComponentRegistry, type Component } from '../../../src/components/registry.js';
import { builtinComponentRegistry, BUILTIN_COMPONENTS } from '../../../src/components/index.js';

function flaky(failures: number): { component: Component & { features(): string[] }; calls: () => number } {
  let calls = 0;
  return {
    calls: () => calls,
    component: {
      async init() {
        calls++;
        if (calls <= failures) throw new Error(`connection refused (attempt ${calls})`);
      },
      async close() {},
      features: () => ['ETAG'],
    },
  };
}

describe('ComponentManager', () => {
  it('reports a failing component with its error, retries, and clears the error once it starts', async () => {
    const f = flaky(2);
    const registry = new ComponentRegistry();
    registry.register({ type: 'state.flaky', block: 'state', version: 'v1', metadataSchema: z.object({}), create: () => f.component });
    const m = new ComponentManager(registry, pino({ level: 'silent' }), 20);
    await m.start([{ name: 's', type: 'state.flaky', version: 'v1', metadata: {} }]);
    expect(m.statuses()).toEqual([{ name: 's', type: 'state.flaky', version: 'v1', ready: false, error: 'connection refused (attempt 1)', capabilities: ['ETAG'] }]);
    expect(m.stateStore('s')).toBeDefined();
    await expect.poll(() => m.statuses()[0]!.ready, { timeout: 2000 }).toBe(true);
    expect(f.calls()).toBe(3);
    expect(m.statuses()[0]!.error).toBeUndefined();
    await m.close();
  });

  it('the builtin registry holds exactly BUILTIN_COMPONENTS; registering twice is a no-op', () => {
    const r = builtinComponentRegistry();
    for (const d of BUILTIN_COMPONENTS) r.register(d);
    expect(r.types()).toEqual(['state.memory', 'state.redis']);
    expect(() => r.register({ ...BUILTIN_COMPONENTS[0]! })).toThrow(/registered twice/);
  });
});
