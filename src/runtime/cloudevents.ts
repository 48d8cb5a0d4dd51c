/**
 * CloudEvents 1.0 JSON envelopes as Dapr makes them. The publisher side wraps the app's bytes
 * (`envelopeForPublish`) so every backend carries the same envelope; the subscriber side parses
 * stored bytes back into a TopicEvent (`topicEventOf`). Dapr's rules:
 * - JSON content (`application/json`, `*+json`) goes in `data` as a JSON value, binary
 *   (`application/octet-stream`) in `data_base64`, anything else in `data` as a string;
 * - data sent as `application/cloudevents+json` already is an envelope: it is kept, with the
 *   missing required fields (id, source, type, specversion) filled and topic/pubsubname set;
 * - `rawPayload: "true"` publishes the bytes as they are; a subscription with `rawPayload: "true"`
 *   gets them wrapped on delivery (random id, `data_base64`, as Dapr's FromRawPayload).
 * `cloudevent.<field>` metadata overrides id, source, type, subject and time (Dapr 1.12+);
 * `cloudevent.traceparent` / `cloudevent.tracestate` set the trace fields (the HTTP front end
 * fills them from the request's W3C headers). An `expiration` (from `ttlInSeconds`, see
 * ./message-ttl.ts) is written into the envelope, replacing one an app-made CloudEvent carried.
 */
import { randomUUID } from 'node:crypto';
import type { TopicEvent } from './app-channel.js';

export const CLOUDEVENT_CONTENT_TYPE = 'application/cloudevents+json';
export const DEFAULT_EVENT_TYPE = 'com.dapr.event.sent';
/** Dapr's default datacontenttype when the publisher gave none. */
export const DEFAULT_DATA_CONTENT_TYPE = 'text/plain';
const SPEC_VERSION = '1.0';
const OVERRIDABLE = ['id', 'source', 'type', 'subject', 'time'] as const;

export interface EnvelopeInput {
  readonly data: Buffer;
  readonly contentType?: string;
  readonly topic: string;
  readonly pubsubName: string;
  /** The publishing app's id. */
  readonly source: string;
  /** Publish metadata: `rawPayload`, `cloudevent.*` overrides (incl. traceparent / tracestate). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** The CloudEvent `expiration` attribute (RFC 3339) when the message has a TTL; not used for a raw payload. */
  readonly expiration?: string;
}

export type Envelope = Record<string, unknown>;

export function isRawPayload(metadata: Readonly<Record<string, string>> | undefined): boolean {
  return (metadata?.rawPayload ?? '').toLowerCase() === 'true';
}

export function isCloudEventContentType(ct: string | undefined): boolean {
  return kindOf(ct) === KIND_CLOUDEVENT;
}

export function isJsonContentType(ct: string | undefined): boolean {
  const k = kindOf(ct);
  return k === KIND_JSON || k === KIND_CLOUDEVENT;
}

export function isBinaryContentType(ct: string | undefined): boolean {
  return kindOf(ct) === KIND_BINARY;
}

const KIND_TEXT = 0;
const KIND_JSON = 1;
const KIND_CLOUDEVENT = 2;
const KIND_BINARY = 3;
/** Content types seen → kind: every publish and delivery asks, and an app uses very few types. */
const kinds = new Map<string, number>();
const KINDS_CACHED = 256;

function kindOf(ct: string | undefined): number {
  if (!ct) return KIND_TEXT;
  let k = kinds.get(ct);
  if (k !== undefined) return k;
  const t = baseType(ct);
  k =
    t === CLOUDEVENT_CONTENT_TYPE ? KIND_CLOUDEVENT
    : t === 'application/octet-stream' ? KIND_BINARY
    : t === 'application/json' || t === 'text/json' || (t.startsWith('application/') && t.endsWith('+json')) ? KIND_JSON
    : KIND_TEXT;
  if (kinds.size >= KINDS_CACHED) kinds.clear();
  kinds.set(ct, k);
  return k;
}

/**
 * The bytes to hand to the backend for one publish: the envelope's JSON, or the data as it is
 * for a raw payload. Throws (a plain Error naming the reason) when data claimed to be a
 * CloudEvent is not a JSON object.
 */
export function envelopeForPublish(input: EnvelopeInput): { data: Buffer; contentType: string } {
  if (isRawPayload(input.metadata)) return { data: input.data, contentType: input.contentType || 'application/octet-stream' };
  const json = isCloudEventContentType(input.contentType) ? JSON.stringify(fromExisting(input)) : newEnvelopeJson(input);
  return { data: Buffer.from(json), contentType: CLOUDEVENT_CONTENT_TYPE };
}

/**
 * A new envelope's JSON, written directly: this runs on every publish, and valid JSON data is
 * spliced in as the app sent it (checked by parsing, not re-serialised — which also keeps
 * numbers beyond double precision intact).
 */
function newEnvelopeJson(input: EnvelopeInput): string {
  const contentType = input.contentType || DEFAULT_DATA_CONTENT_TYPE;
  const m = input.metadata;
  // Metadata usually has no cloudevent.* key at all: one look instead of seven.
  const o = m !== undefined && hasCloudEventKey(m) ? m : undefined;
  // The time as a JSON string is the same for a millisecond: reused across the publishes within it.
  const time = o?.['cloudevent.time'] ? JSON.stringify(o['cloudevent.time']) : nowJson();
  let out =
    `{"id":${JSON.stringify(o?.['cloudevent.id'] || randomUUID())},"source":${JSON.stringify(o?.['cloudevent.source'] || input.source)}` +
    `,"type":${JSON.stringify(o?.['cloudevent.type'] || DEFAULT_EVENT_TYPE)},"specversion":"${SPEC_VERSION}","datacontenttype":${JSON.stringify(contentType)}` +
    `,"time":${time},"topic":${JSON.stringify(input.topic)},"pubsubname":${JSON.stringify(input.pubsubName)}`;
  const subject = o?.['cloudevent.subject'];
  if (subject) out += `,"subject":${JSON.stringify(subject)}`;
  if (input.expiration) out += `,"expiration":${JSON.stringify(input.expiration)}`;
  if (o) for (const [k, v] of Object.entries(trace(input))) out += `,"${k}":${JSON.stringify(v)}`;
  const kind = kindOf(contentType);
  if (kind === KIND_BINARY) return `${out},"data_base64":"${input.data.toString('base64')}"}`;
  const text = input.data.toString('utf8');
  return `${out},"data":${(kind === KIND_JSON || kind === KIND_CLOUDEVENT) && isJsonText(text) ? text : JSON.stringify(text)}}`;
}

function hasCloudEventKey(m: Readonly<Record<string, string>>): boolean {
  for (const k in m) if (k.startsWith('cloudevent.')) return true;
  return false;
}

let timeMs = 0;
let timeJson = '';

function nowJson(): string {
  const ms = Date.now();
  if (ms !== timeMs) {
    timeMs = ms;
    timeJson = `"${new Date(ms).toISOString()}"`;
  }
  return timeJson;
}

function fromExisting(input: EnvelopeInput): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input.data.toString('utf8'));
  } catch (e) {
    throw new Error(`data sent as ${CLOUDEVENT_CONTENT_TYPE} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(parsed)) throw new Error(`data sent as ${CLOUDEVENT_CONTENT_TYPE} must be a JSON object`);
  const env: Envelope = { ...parsed, topic: input.topic, pubsubname: input.pubsubName, ...trace(input) };
  env.id ??= randomUUID();
  env.source ??= input.source;
  env.type ??= DEFAULT_EVENT_TYPE;
  env.specversion ??= SPEC_VERSION;
  applyOverrides(env, input.metadata);
  if (input.expiration) env.expiration = input.expiration; // as Dapr's ApplyMetadata: the TTL wins over the app's own
  return env;
}

/** Dapr sets traceid and traceparent to the same W3C traceparent. */
function trace(input: EnvelopeInput): Envelope {
  const parent = input.metadata?.['cloudevent.traceparent'];
  if (!parent) return {};
  const state = input.metadata?.['cloudevent.tracestate'];
  return { traceid: parent, traceparent: parent, ...(state ? { tracestate: state } : {}) };
}

function applyOverrides(env: Envelope, metadata: Readonly<Record<string, string>> | undefined): void {
  for (const f of OVERRIDABLE) {
    const v = metadata?.[`cloudevent.${f}`];
    if (v) env[f] = v;
  }
}

export interface StoredMessage {
  readonly data: Buffer;
  readonly topic: string;
  readonly pubsubName: string;
  /** The subscription's `rawPayload` metadata was "true": wrap whatever bytes are stored. */
  readonly rawPayload: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The event to deliver for stored bytes. Bytes that are not a JSON object (published raw by
 * another producer) are wrapped like a raw payload rather than failing forever.
 */
export function topicEventOf(msg: StoredMessage): TopicEvent {
  let env: Envelope | undefined;
  if (!msg.rawPayload) {
    try {
      const v: unknown = JSON.parse(msg.data.toString('utf8'));
      if (isObject(v)) env = v;
    } catch {
      env = undefined;
    }
  }
  if (env !== undefined) return new StoredEvent(env, msg, msg.data);
  return new StoredEvent(rawEnvelope(msg), msg, undefined);
}

/**
 * A TopicEvent over a parsed envelope. A class rather than an object literal with a getter:
 * one is made per delivery, and this keeps them one shape and cheap to make.
 */
class StoredEvent implements TopicEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly specVersion: string;
  readonly dataContentType: string;
  readonly topic: string;
  readonly pubsubName: string;
  readonly metadata: Readonly<Record<string, string>>;
  private dataBytes: Buffer | undefined;

  constructor(
    readonly envelope: Envelope,
    msg: StoredMessage,
    /** The stored JSON when the envelope is exactly what was stored (not a raw wrap). */
    readonly stored: Buffer | undefined,
  ) {
    const e = envelope;
    this.id = str(e.id);
    this.source = str(e.source);
    this.type = str(e.type);
    this.specVersion = str(e.specversion) || SPEC_VERSION;
    this.dataContentType = str(e.datacontenttype);
    this.topic = str(e.topic) || msg.topic;
    this.pubsubName = str(e.pubsubname) || msg.pubsubName;
    this.metadata = msg.metadata ?? NO_METADATA;
  }

  /** Only the gRPC channel reads it; the HTTP channel sends the envelope. */
  get data(): Buffer {
    return (this.dataBytes ??= dataBytes(this.envelope));
  }
}

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The envelope as JSON bytes for sending: the stored bytes when the event was parsed from them
 * (the same JSON object, without serialising it again), else its JSON.
 */
export function envelopeBytes(event: TopicEvent): Buffer {
  return (event instanceof StoredEvent ? event.stored : undefined) ?? Buffer.from(JSON.stringify(event.envelope));
}

/** Dapr's FromRawPayload: a fresh id, no source, the bytes in `data_base64`. */
function rawEnvelope(msg: StoredMessage): Envelope {
  return {
    id: randomUUID(),
    source: '',
    type: DEFAULT_EVENT_TYPE,
    specversion: SPEC_VERSION,
    datacontenttype: 'application/octet-stream',
    topic: msg.topic,
    pubsubname: msg.pubsubName,
    data_base64: msg.data.toString('base64'),
  };
}

/** `data` as the bytes it would be sent as: JSON text for JSON values, UTF-8 for strings. */
function dataBytes(env: Envelope): Buffer {
  if (typeof env.data_base64 === 'string') return Buffer.from(env.data_base64, 'base64');
  if (env.data === undefined) return Buffer.alloc(0);
  if (typeof env.data === 'string' && !isJsonContentType(str(env.datacontenttype))) return Buffer.from(env.data);
  return Buffer.from(JSON.stringify(env.data));
}

/** Dapr keeps undecodable "JSON" data as a string rather than refusing the publish. */
function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function baseType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

function isObject(v: unknown): v is Envelope {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}
