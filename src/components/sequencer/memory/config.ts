/** `sequencer.memory` metadata: none (an unknown key is an error). */
import { z } from 'zod';

export const memorySequencerMetadata = z.strictObject({}).prefault({});
export type MemorySequencerMetadata = z.output<typeof memorySequencerMetadata>;
