/**
 * The sequencer conformance suite: the same cases for every backend, each built through the real
 * component registry from user-format YAML. Backends shared between sidecars (`shared`) must
 * also keep ids unique across instances and across a restart.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pino } from 'pino';
import { builtinComponentRegistry } from '../../../src/components/index.js';
import { ComponentRequestError } from '../../../src/components/errors.js';
import type { Sequencer } from '../../../src/components/sequencer/index.js';
import { componentSchema } from '../../../src/config/schema-components.js';

export interface SequencerMatrixEntry {
  readonly type: string;
  /** The counters live outside the sidecar: many instances share them and they survive a restart. */
  readonly shared: boolean;
  /** The `components:` entry as a user writes it (name, type, metadata). */
  readonly yaml: string;
  /** Removes what the run left in the backend. */
  readonly cleanup?: () => Promise<void>;
}

export function buildSequencer(yaml: string): Sequencer {
  const spec = componentSchema.parse(parse(yaml));
  const def = builtinComponentRegistry().get(spec.type, spec.version);
  if (!def) throw new Error(`unknown component type ${spec.type}`);
  expect(def.block).toBe('sequencer');
  return def.create(def.metadataSchema.parse(spec.metadata), { name: spec.name, logger: pino({ level: 'silent' }) }) as Sequencer;
}

/** Sorted ascending, as bigints compare. */
const sorted = (ids: readonly bigint[]): bigint[] => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const range = (from: bigint, n: number): bigint[] => Array.from({ length: n }, (_, i) => from + BigInt(i));

export function sequencerConformance(entry: SequencerMatrixEntry): void {
  describe(`sequencer conformance: ${entry.type}`, () => {
    let seq: Sequencer;
    const opened: Sequencer[] = [];
    const run = randomUUID().slice(0, 8);
    const k = (name: string): string => `${run}-${name}`;
    const open = async (): Promise<Sequencer> => {
      const s = buildSequencer(entry.yaml);
      opened.push(s);
      await s.init();
      return s;
    };

    beforeAll(async () => {
      seq = await open();
    });
    afterAll(async () => {
      await entry.cleanup?.();
      for (const s of opened) await s.close();
    });

    it('the first id of a key is 1, then 2, 3', async () => {
      expect(await seq.nextId({ key: k('first') })).toBe(1n);
      expect(await seq.nextId({ key: k('first') })).toBe(2n);
      expect(await seq.nextId({ key: k('first') })).toBe(3n);
    });

    it('ids are bigints that strictly increase', async () => {
      let last = 0n;
      for (let i = 0; i < 20; i++) {
        const id = await seq.nextId({ key: k('inc') });
        expect(typeof id).toBe('bigint');
        expect(id > last).toBe(true);
        last = id;
      }
    });

    it('keys are independent (and keys with separators are kept apart)', async () => {
      await seq.nextId({ key: k('a') });
      await seq.nextId({ key: k('a') });
      expect(await seq.nextId({ key: k('b') })).toBe(1n);
      expect(await seq.nextId({ key: k('a') })).toBe(3n);
      expect(await seq.nextId({ key: k('a:b|ü/c') })).toBe(1n);
    });

    it('200 concurrent calls on one key get 200 distinct consecutive ids', async () => {
      const ids = await Promise.all(Array.from({ length: 200 }, () => seq.nextId({ key: k('burst') })));
      expect(sorted(ids)).toEqual(range(1n, 200));
    });

    it('an empty key is a bad request', async () => {
      await expect(seq.nextId({ key: '' })).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(seq.nextId({ key: '' })).rejects.toThrow(/key is empty/);
    });

    if (entry.shared) {
      it('two instances sharing the backend never hand out the same id', async () => {
        const other = await open();
        const calls = Array.from({ length: 100 }, (_, i) => (i % 2 ? seq : other).nextId({ key: k('two') }));
        const ids = await Promise.all(calls);
        expect(sorted(ids)).toEqual(range(1n, 100));
      });

      it('a new instance after close continues above the last id', async () => {
        const first = await open();
        let last = 0n;
        for (let i = 0; i < 5; i++) last = await first.nextId({ key: k('restart') });
        await first.close();
        const second = await open();
        expect(await second.nextId({ key: k('restart') })).toBe(last + 1n);
      });
    } else {
      it('per process: a new instance starts again at 1', async () => {
        await seq.nextId({ key: k('local') });
        const other = await open();
        expect(await other.nextId({ key: k('local') })).toBe(1n);
      });
    }
  });
}
