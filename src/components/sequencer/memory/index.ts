/**
 * `sequencer.memory`: counters in the sidecar process. Ids are unique and increasing for this
 * sidecar only, and start again at 1 after a restart: for tests and single-instance use.
 */
import type { ComponentDefinition } from '../../registry.js';
import { checkSequencerKey } from '../key.js';
import type { NextIdRequest, Sequencer } from '../store.js';
import { memorySequencerMetadata, type MemorySequencerMetadata } from './config.js';

export class MemorySequencer implements Sequencer {
  private readonly last = new Map<string, bigint>();

  async init(): Promise<void> {}

  async close(): Promise<void> {}

  features(): readonly string[] {
    return [];
  }

  async nextId(req: NextIdRequest): Promise<bigint> {
    const key = checkSequencerKey(req.key);
    const id = (this.last.get(key) ?? 0n) + 1n;
    this.last.set(key, id);
    return id;
  }
}

export const memorySequencer: ComponentDefinition<MemorySequencer, MemorySequencerMetadata> = {
  type: 'sequencer.memory',
  block: 'sequencer',
  version: 'v1',
  metadataSchema: memorySequencerMetadata,
  create: () => new MemorySequencer(),
};
