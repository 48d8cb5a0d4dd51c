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
    await m.start([{ name: 's', type: 'state.flaky', version: 'v1', metadata: {}, secretRefs: {} }]);
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
    expect(r.types()).toEqual(BUILTIN_COMPONENTS.map((d) => d.type).sort());
    expect(r.types()).toEqual(expect.arrayContaining(['state.memory', 'pubsub.memory', 'lock.memory', 'configuration.file', 'sequencer.memory', 'secretstores.local.file', 'secretstores.local.env']));
    expect(() => r.register({ ...BUILTIN_COMPONENTS[0]! })).toThrow(/registered twice/);
  });

  describe('secret references and updates', () => {
    const made: { name: string; metadata: Record<string, unknown>; closed: boolean }[] = [];
    function registry(): ComponentRegistry {
      const r = builtinComponentRegistry();
      r.register({
        type: 'state.probe',
        block: 'state',
        version: 'v1',
        metadataSchema: z.strictObject({ host: z.string().default('h'), password: z.string().optional() }),
        create: (metadata: Record<string, unknown>, ctx: { name: string }) => {
          const rec = { name: ctx.name, metadata, closed: false };
          made.push(rec);
          return { init: async () => {}, close: async () => void (rec.closed = true) };
        },
      });
      return r;
    }
    const prefix = `CAPA_MGR_${process.pid}_`;
    const secrets = { name: 'secrets', type: 'secretstores.local.env', version: 'v1', metadata: { prefix }, secretRefs: {} };
    const probe = (name: string, metadata: Record<string, unknown> = {}) => ({
      name,
      type: 'state.probe',
      version: 'v1',
      metadata,
      secretRefs: { password: { store: 'secrets', name: 'DB', key: 'DB' } },
    });

    it('starts secret stores first and builds the component with the secret value in its metadata', async () => {
      process.env[`${prefix}DB`] = 's3cret';
      const m = new ComponentManager(registry(), pino({ level: 'silent' }), 20);
      try {
        // The probe is listed first: the manager still reads its secret from the store.
        await m.start([probe('db'), secrets]);
        expect(made.at(-1)).toMatchObject({ name: 'db', metadata: { host: 'h', password: 's3cret' } });
        expect(m.statuses().every((st) => st.ready)).toBe(true);
      } finally {
        delete process.env[`${prefix}DB`];
        await m.close();
      }
    });

    it('a missing secret is reported on the component (never its value) and retried until it appears', async () => {
      const m = new ComponentManager(registry(), pino({ level: 'silent' }), 20);
      try {
        await m.start([secrets, probe('db2')]);
        const st = m.statuses().find((x) => x.name === 'db2')!;
        expect(st.ready).toBe(false);
        expect(st.error).toMatch(/metadata password: cannot read secret DB from secrets/);
        expect(m.stateStore('db2')).toBeUndefined();
        process.env[`${prefix}DB`] = 'late';
        await expect.poll(() => m.statuses().find((x) => x.name === 'db2')!.ready, { timeout: 2000 }).toBe(true);
        expect(made.at(-1)).toMatchObject({ name: 'db2', metadata: { password: 'late' } });
      } finally {
        delete process.env[`${prefix}DB`];
        await m.close();
      }
    });

    it('update closes removed and changed components, starts new ones and leaves unchanged ones running', async () => {
      process.env[`${prefix}DB`] = 'x';
      const m = new ComponentManager(registry(), pino({ level: 'silent' }), 20);
      try {
        const keep = { name: 'keep', type: 'state.memory', version: 'v1', metadata: {}, secretRefs: {} };
        await m.start([secrets, keep, probe('a', { host: 'one' }), probe('gone')]);
        const keptStore = m.stateStore('keep');
        const a1 = made.find((x) => x.name === 'a' && x.metadata.host === 'one')!;
        const gone = made.find((x) => x.name === 'gone')!;
        const changes = await m.update([secrets, keep, probe('a', { host: 'two' }), probe('new')]);
        expect(changes).toEqual({ added: ['new'], removed: ['gone'], changed: ['a'] });
        expect(a1.closed).toBe(true);
        expect(gone.closed).toBe(true);
        expect(m.stateStore('gone')).toBeUndefined();
        expect(m.stateStore('keep')).toBe(keptStore);
        expect(made.at(-1)!.name === 'new' || made.at(-2)!.name === 'new').toBe(true);
        expect(made.some((x) => x.name === 'a' && x.metadata.host === 'two' && !x.closed)).toBe(true);
        expect(m.names('state')).toEqual(['keep', 'a', 'new']);
      } finally {
        delete process.env[`${prefix}DB`];
        await m.close();
      }
    });
  });
});
