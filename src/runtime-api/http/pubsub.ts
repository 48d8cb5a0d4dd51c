/**
 * Dapr's publish API over the runtime's pub/sub layer (src/runtime/pubsub.ts):
 *   POST /v1.0/publish/{pubsub}/{topic}             body = data, Content-Type = its type → 204
 *        ?metadata.rawPayload=true (no envelope), ?metadata.ttlInSeconds=N (the message expires
 *        N seconds from now), ?metadata.<k>=<v> (backend hints, cloudevent.*)
 *   POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}  [{entryId, event, contentType, metadata}]
 *        → 204; some failed → 500 {failedEntries: [{entryId, error}], errorCode}
 * The request's W3C `traceparent` / `tracestate` go into the envelope. A `ttlInSeconds` that is
 * not a positive integer is a 400 naming it (the runtime checks a single publish; a bulk one is
 * checked entry by entry before anything is published).
 */
import type { IncomingMessage } from 'node:http';
import { ComponentError } from '../../components/errors.js';
import { isCloudEventContentType, isJsonContentType } from '../../runtime/cloudevents.js';
import { TTL_KEY, parseTtlSeconds } from '../../runtime/message-ttl.js';
import type { PublishCall, RuntimeServices } from '../../runtime/services.js';
import { DaprHttpError, componentFailure } from './errors.js';
import { MAX_BODY, NO_CONTENT, header, json, queryMetadata, readJson, stringMap, type Reply } from './io.js';

const EMPTY = Buffer.alloc(0);

export async function publish(services: RuntimeServices, pubsubName: string, topic: string, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  checkTarget(services, pubsubName, topic);
  const data = await readPublishBody(req);
  const contentType = header(req, 'content-type');
  const metadata = withTrace(queryMetadata(query), req);
  if (isCloudEventContentType(contentType)) checkCloudEvent(data, topic, pubsubName);
  await publishOne(services, { pubsubName, topic, data, contentType, metadata });
  return NO_CONTENT;
}

export async function publishBulk(services: RuntimeServices, pubsubName: string, topic: string, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  checkTarget(services, pubsubName, topic);
  const body = await readJson(req);
  if (!Array.isArray(body)) throw eventsSer(topic, pubsubName, 'expected a JSON array of entries');
  const common = withTrace(queryMetadata(query), req);
  checkTtl(common, 'metadata', topic, pubsubName);
  const seen = new Set<string>();
  const calls = body.map((e: unknown, i: number): [string, PublishCall] => {
    const at = `[${i}]`;
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw eventsSer(topic, pubsubName, `${at}: expected an object`);
    const entry = e as { entryId?: unknown; event?: unknown; contentType?: unknown; metadata?: unknown };
    if (typeof entry.entryId !== 'string' || entry.entryId === '') throw eventsSer(topic, pubsubName, `${at}.entryId: must be a non-empty string`);
    if (seen.has(entry.entryId)) throw eventsSer(topic, pubsubName, `${at}.entryId: ${entry.entryId} is duplicated`);
    seen.add(entry.entryId);
    if (entry.event === undefined) throw eventsSer(topic, pubsubName, `${at}.event: is missing`);
    if (typeof entry.contentType !== 'string' || entry.contentType === '') throw eventsSer(topic, pubsubName, `${at}.contentType: must be a non-empty string`);
    const structured = isJsonContentType(entry.contentType) || isCloudEventContentType(entry.contentType);
    const data = typeof entry.event === 'string' && !structured ? Buffer.from(entry.event) : Buffer.from(JSON.stringify(entry.event));
    const metadata = { ...common, ...stringMap(entry.metadata, `${at}.metadata`) };
    checkTtl(metadata, `${at}.metadata`, topic, pubsubName);
    return [entry.entryId, { pubsubName, topic, data, contentType: entry.contentType, metadata }];
  });
  const failedEntries: { entryId: string; error: string }[] = [];
  for (const [entryId, call] of calls) {
    try {
      await publishOne(services, call);
    } catch (e) {
      failedEntries.push({ entryId, error: (e as Error).message });
    }
  }
  if (failedEntries.length === 0) return NO_CONTENT;
  return json(500, { failedEntries, errorCode: 'ERR_PUBSUB_PUBLISH_MESSAGE' });
}

async function publishOne(services: RuntimeServices, call: PublishCall): Promise<void> {
  try {
    await services.pubsub.publish(call);
  } catch (e) {
    if (e instanceof ComponentError && e.kind === 'not-found') throw new DaprHttpError('ERR_PUBSUB_NOT_FOUND', e.message);
    throw componentFailure('ERR_PUBSUB_PUBLISH_MESSAGE', `error when publish to topic ${call.topic} in pubsub ${call.pubsubName}`, e);
  }
}

/**
 * The body of a publish, as io.ts's readBody reads it (same limit, same error) but with plain
 * 'data' / 'end' listeners: the async iterator costs several promises per request, and this
 * runs on every publish.
 */
function readPublishBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > MAX_BODY) {
        done();
        req.destroy(); // as the async iterator does when the reader gives up
        reject(new DaprHttpError('ERR_BODY_TOO_LARGE', `request body is larger than ${MAX_BODY} bytes`));
        return;
      }
      if (first === undefined) first = c;
      else (more ??= [first]).push(c);
    };
    const onEnd = (): void => {
      done();
      resolve(more ? Buffer.concat(more, size) : (first ?? EMPTY));
    };
    const onError = (e: Error): void => {
      done();
      reject(e);
    };
    const onClose = (): void => {
      done();
      reject(new Error('the request closed before its body was complete'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function checkTarget(services: RuntimeServices, pubsubName: string, topic: string): void {
  const names = services.components.names('pubsub');
  if (names.length === 0) throw new DaprHttpError('ERR_PUBSUB_NOT_CONFIGURED', 'no pubsub is configured');
  if (pubsubName === '') throw new DaprHttpError('ERR_PUBSUB_EMPTY', 'pubsub name is empty');
  if (!names.includes(pubsubName)) throw new DaprHttpError('ERR_PUBSUB_NOT_FOUND', `pubsub ${pubsubName} not found`);
  const why = services.components.notReady('pubsub', pubsubName);
  if (why !== undefined) throw new DaprHttpError('ERR_PUBSUB_PUBLISH_MESSAGE', `pubsub ${pubsubName} is not ready: ${why}`, 500);
  if (topic === '') throw new DaprHttpError('ERR_TOPIC_NAME_EMPTY', `topic is empty in pubsub ${pubsubName}`);
}

function checkCloudEvent(data: Buffer, topic: string, pubsubName: string): void {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new DaprHttpError('ERR_PUBSUB_CLOUD_EVENTS_SER', `error when marshalling cloud event envelope for topic ${topic} pubsub ${pubsubName}: body is not JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new DaprHttpError('ERR_PUBSUB_CLOUD_EVENTS_SER', `error when marshalling cloud event envelope for topic ${topic} pubsub ${pubsubName}: body must be a JSON object`);
}

/** A bulk publish's `ttlInSeconds` (request-wide at `metadata`, per entry at `[i].metadata`) must be a positive integer. */
function checkTtl(metadata: Record<string, string>, at: string, topic: string, pubsubName: string): void {
  const ttl = metadata[TTL_KEY];
  if (!ttl) return;
  try {
    parseTtlSeconds(ttl);
  } catch (e) {
    throw eventsSer(topic, pubsubName, `${at}.${TTL_KEY}: ${(e as Error).message}`);
  }
}

/** The caller's W3C trace context, unless the metadata already sets it. */
function withTrace(metadata: Record<string, string>, req: IncomingMessage): Record<string, string> {
  const parent = header(req, 'traceparent');
  const state = header(req, 'tracestate');
  if (parent && !metadata['cloudevent.traceparent']) metadata['cloudevent.traceparent'] = parent;
  if (state && !metadata['cloudevent.tracestate']) metadata['cloudevent.tracestate'] = state;
  return metadata;
}

function eventsSer(topic: string, pubsubName: string, reason: string): DaprHttpError {
  return new DaprHttpError('ERR_PUBSUB_EVENTS_SER', `error when unmarshaling the request for topic ${topic} pubsub ${pubsubName}: ${reason}`);
}
