import type { HttpFilterFactory } from './types.js';

/**
 * Filter factories by canonical name, alias and type URL, so YAML (by name) and xDS (by
 * `@type`) reach the same factory. Tests build their own registry.
 */
export class FilterRegistry {
  private readonly byName = new Map<string, HttpFilterFactory<any, any>>();
  private readonly byType = new Map<string, HttpFilterFactory<any, any>>();

  register(f: HttpFilterFactory<any, any>): void {
    const prev = this.byName.get(f.name);
    if (prev === f) return;
    if (prev) throw new Error(`filter factory ${f.name} is registered twice`);
    this.byName.set(f.name, f);
    for (const a of f.aliases ?? []) this.byName.set(a, f);
    this.byType.set(f.typeUrl, f);
  }

  registerAll(list: readonly HttpFilterFactory<any, any>[]): this {
    for (const f of list) this.register(f);
    return this;
  }

  get(name: string): HttpFilterFactory<any, any> | undefined {
    return this.byName.get(name);
  }

  getByType(typeUrl: string): HttpFilterFactory<any, any> | undefined {
    return this.byType.get(typeUrl);
  }

  names(): string[] {
    return [...new Set([...this.byName.values()].map((f) => f.name))].sort();
  }
}
