/** Collects a subscription's notifications and waits (a bounded time) for one to arrive. */
import type { ConfigurationItem } from '../../../src/components/configuration/store.js';
import { sleep } from '../lock/build.js';

export class Changes {
  readonly items: ConfigurationItem[] = [];
  readonly onChange = (items: ConfigurationItem[]): void => void this.items.push(...items);

  /** The first item for which `match` holds, within `ms` (the 1 s delivery promise by default). */
  async next(match: (i: ConfigurationItem) => boolean, ms = 1000): Promise<ConfigurationItem> {
    const until = Date.now() + ms;
    for (;;) {
      const found = this.items.find(match);
      if (found) return found;
      if (Date.now() > until) throw new Error(`no matching change within ${ms} ms; got ${JSON.stringify(this.items)}`);
      await sleep(10);
    }
  }

  keys(): string[] {
    return this.items.map((i) => i.key);
  }
}
