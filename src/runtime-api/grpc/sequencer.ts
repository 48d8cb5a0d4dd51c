/**
 * GetNextId over the sequencer building block. The id is an int64 on the wire, sent as its
 * decimal string (the proto marks it `jstype = JS_STRING` and the SDK returns it as a string),
 * so ids beyond 2^53 stay exact.
 */
import type { Sequencer } from '../../components/sequencer/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { invalid, wrap } from './errors.js';
import { findComponent, stringMap } from './stores.js';

export function sequencerHandlers(services: RuntimeServices) {
  return {
    async GetNextId(req: { store_name: string; key: string; metadata: Record<string, string> }) {
      const s = findComponent<Sequencer>(services, 'sequencer', req.store_name);
      if (!req.key) throw invalid(`key is empty in sequencer store ${req.store_name}`);
      const id = await wrap(`failed to get next id of ${req.key} from sequencer store ${req.store_name}`, () =>
        s.nextId({ key: req.key, metadata: stringMap(req.metadata) }),
      );
      return { next_id: id.toString() };
    },
  };
}
