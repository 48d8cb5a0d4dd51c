/**
 * The sequencer building block (Layotto's GetNextId): per key, ids that strictly increase across
 * every sidecar sharing the backend; never the same id twice for one key, even across restarts
 * of a durable backend. Ids start at 1.
 */
import type { Component } from '../registry.js';

export interface NextIdRequest {
  readonly key: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface Sequencer extends Component {
  nextId(req: NextIdRequest): Promise<bigint>;
}
