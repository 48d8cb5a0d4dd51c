/**
 * Pieces every pub/sub backend shares: request checks, the handler call (a rejection is a
 * RETRY), a small slot counter that bounds how many messages a subscription has in its handler
 * at once, and the duration metadata type.
 */
import { z } from 'zod';
import { ComponentRequestError } from '../errors.js';
import { DURATION_HINT, describe, tryParseDuration } from '../../config/units.js';
import type { DeliveryResult, Message, MessageHandler, PublishRequest, SubscribeRequest } from './pubsub.js';

/**
 * A duration as Dapr's metadata spells it: "500ms", "10s", "1m30s", or a bare number of
 * milliseconds (Dapr accepts both).
 */
export const duration = z.unknown().transform((v, ctx): number => {
  const ms = typeof v === 'number' ? (Number.isInteger(v) && v >= 0 ? v : undefined) : typeof v === 'string' ? (/^\d+$/.test(v.trim()) ? Number(v.trim()) : tryParseDuration(v)) : undefined;
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `${DURATION_HINT} (or milliseconds), got ${describe(v)}` });
    return z.NEVER;
  }
  return ms;
});

export function checkPublish(req: PublishRequest): void {
  checkTopic(req.topic);
  if (!Buffer.isBuffer(req.data)) throw new ComponentRequestError('publish: data must be bytes');
}

export function checkSubscribe(req: SubscribeRequest): void {
  checkTopic(req.topic);
  if (typeof req.consumerGroup !== 'string' || req.consumerGroup === '') throw new ComponentRequestError('subscribe: consumerGroup must not be empty');
}

function checkTopic(topic: unknown): void {
  if (typeof topic !== 'string' || topic === '') throw new ComponentRequestError('topic must not be empty');
}

/** Calls the app's handler; a rejection or an unknown answer counts as RETRY (never lost). */
export async function deliver(handler: MessageHandler, msg: Message): Promise<DeliveryResult> {
  try {
    const r = await handler(msg);
    return r === 'SUCCESS' || r === 'DROP' ? r : 'RETRY';
  } catch {
    return 'RETRY';
  }
}

/**
 * Bounds the messages a subscription has in its handler at once. Backends take a slot before
 * starting each handler, in arrival order, so handlers start in the order the backend gave the
 * messages even when several run at once.
 */
export class Slots {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get free(): number {
    return this.limit - this.used;
  }

  async acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Waits for a free slot, then takes up to `max` (for batch reads); returns how many. */
  async take(max: number): Promise<number> {
    await this.acquire();
    const extra = Math.max(0, Math.min(max - 1, this.free));
    this.used += extra;
    return 1 + extra;
  }

  release(n = 1): void {
    for (let i = 0; i < n; i++) this.releaseOne();
  }

  private releaseOne(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }

  /** Wakes every waiter (on close); their loop then sees it is closed. */
  releaseAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A sleep that ends early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Metadata as a JSON string (NATS header / stream field), '' when there is none. */
export function encodeMetadata(m: Readonly<Record<string, string>> | undefined): string {
  return m && Object.keys(m).length ? JSON.stringify(m) : '';
}

export function decodeMetadata(s: string | undefined): Record<string, string> {
  if (!s) return {};
  try {
    const v = JSON.parse(s) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // written by someone else: no metadata rather than a message that can never be delivered
  }
  return {};
}
