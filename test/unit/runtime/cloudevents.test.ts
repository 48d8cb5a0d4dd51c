import { describe, expect, it } from 'vitest';
import { envelopeBytes, envelopeForPublish, topicEventOf } from '../../../src/runtime/cloudevents.js';

const base = { topic: 'orders', pubsubName: 'pubsub', source: 'checkout' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function envelope(data: string | Buffer, contentType?: string, metadata?: Record<string, string>): Record<string, any> {
  const out = envelopeForPublish({ ...base, data: Buffer.from(data), contentType, metadata });
  expect(out.contentType).toBe('application/cloudevents+json');
  return JSON.parse(out.data.toString());
}

describe('CloudEvents envelope (publisher side)', () => {
  it('JSON data is embedded as a JSON value with Dapr\'s fields', () => {
    const e = envelope('{"orderId":7,"items":["a"]}', 'application/json');
    expect(e).toMatchObject({ source: 'checkout', type: 'com.dapr.event.sent', specversion: '1.0', datacontenttype: 'application/json', topic: 'orders', pubsubname: 'pubsub', data: { orderId: 7, items: ['a'] } });
    expect(e.id).toMatch(UUID);
    expect(e.data_base64).toBeUndefined();
    expect(envelope('{}', 'application/json').id).not.toBe(e.id);
  });

  it('+json types are JSON; text is a string; no content type is text/plain; binary is data_base64', () => {
    expect(envelope('[1,2]', 'application/vnd.api+json; charset=utf-8').data).toEqual([1, 2]);
    expect(envelope('hello', 'text/plain').data).toBe('hello');
    const untyped = envelope('{"a":1}');
    expect(untyped.datacontenttype).toBe('text/plain');
    expect(untyped.data).toBe('{"a":1}');
    const bin = envelope(Buffer.from([0, 255, 1]), 'application/octet-stream');
    expect(bin.data).toBeUndefined();
    expect(Buffer.from(bin.data_base64, 'base64')).toEqual(Buffer.from([0, 255, 1]));
  });

  it('an app-made CloudEvent is kept, missing fields are filled, topic/pubsubname set', () => {
    const e = envelope(JSON.stringify({ id: 'my-id', type: 'order.created', data: { x: 1 }, custom: 'kept' }), 'application/cloudevents+json');
    expect(e).toMatchObject({ id: 'my-id', type: 'order.created', source: 'checkout', specversion: '1.0', topic: 'orders', pubsubname: 'pubsub', data: { x: 1 }, custom: 'kept' });
    const filled = envelope('{}', 'application/cloudevents+json');
    expect(filled.id).toMatch(UUID);
    expect(filled.type).toBe('com.dapr.event.sent');
  });

  it('JSON data goes in as the app sent it (big numbers intact); invalid JSON becomes a string', () => {
    const out = envelopeForPublish({ ...base, data: Buffer.from('{"big":12345678901234567890123,"s":"\\u00e9"}'), contentType: 'application/json' }).data.toString();
    expect(out).toContain('"data":{"big":12345678901234567890123,"s":"\\u00e9"}');
    expect(JSON.parse(out).data.s).toBe('é');
    expect(envelope('{"a":', 'application/json').data).toBe('{"a":');
    expect(envelope('', 'application/json').data).toBe('');
    expect(envelope('say "hi"\n', 'text/plain', { 'cloudevent.subject': 'sub"j', 'cloudevent.source': 'other' })).toMatchObject({ data: 'say "hi"\n', subject: 'sub"j', source: 'other' });
  });

  it('a "CloudEvent" that is not a JSON object is refused with the reason', () => {
    expect(() => envelopeForPublish({ ...base, data: Buffer.from('nope'), contentType: 'application/cloudevents+json' })).toThrow(/not JSON/);
    expect(() => envelopeForPublish({ ...base, data: Buffer.from('[1]'), contentType: 'application/cloudevents+json' })).toThrow(/JSON object/);
  });

  it('rawPayload=true publishes the bytes unchanged', () => {
    const out = envelopeForPublish({ ...base, data: Buffer.from('{"a":1}'), contentType: 'application/json', metadata: { rawPayload: 'true' } });
    expect(out.data.toString()).toBe('{"a":1}');
    expect(out.contentType).toBe('application/json');
  });

  it('cloudevent.* metadata overrides fields and sets the trace context', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const e = envelope('x', 'text/plain', { 'cloudevent.id': 'fixed', 'cloudevent.type': 't', 'cloudevent.traceparent': tp, 'cloudevent.tracestate': 'a=b' });
    expect(e).toMatchObject({ id: 'fixed', type: 't', traceparent: tp, traceid: tp, tracestate: 'a=b' });
    expect(envelope('x').traceparent).toBeUndefined();
  });

  it('an expiration (ttlInSeconds) is written into a new envelope and replaces an app-made CloudEvent\'s; none by default', () => {
    const expiration = '2026-01-02T03:04:05.678Z';
    const made = (data: string, contentType: string) => JSON.parse(envelopeForPublish({ ...base, data: Buffer.from(data), contentType, expiration }).data.toString());
    expect(made('{"a":1}', 'application/json')).toMatchObject({ expiration, data: { a: 1 } });
    expect(made('hi', 'text/plain')).toMatchObject({ expiration, data: 'hi' });
    expect(made('{"id":"x","expiration":"2099-01-01T00:00:00Z"}', 'application/cloudevents+json')).toMatchObject({ id: 'x', expiration });
    expect(envelope('{"a":1}', 'application/json').expiration).toBeUndefined();
    expect(envelope('{"expiration":"2099-01-01T00:00:00Z"}', 'application/cloudevents+json').expiration).toBe('2099-01-01T00:00:00Z');
    const raw = envelopeForPublish({ ...base, data: Buffer.from('{"a":1}'), contentType: 'application/json', metadata: { rawPayload: 'true' }, expiration });
    expect(raw.data.toString()).toBe('{"a":1}');
  });
});

describe('stored bytes → TopicEvent (subscriber side)', () => {
  it('parses an envelope: fields, JSON data as its JSON text, the envelope itself', () => {
    const { data } = envelopeForPublish({ ...base, data: Buffer.from('{"n":1}'), contentType: 'application/json' });
    const ev = topicEventOf({ data, topic: 'orders', pubsubName: 'pubsub', rawPayload: false, metadata: { k: 'v' } });
    expect(ev).toMatchObject({ source: 'checkout', type: 'com.dapr.event.sent', specVersion: '1.0', dataContentType: 'application/json', topic: 'orders', pubsubName: 'pubsub', metadata: { k: 'v' } });
    expect(JSON.parse(ev.data.toString())).toEqual({ n: 1 });
    expect(ev.envelope.id).toBe(ev.id);
  });

  it('text data comes back as its bytes, binary from data_base64', () => {
    const text = envelopeForPublish({ ...base, data: Buffer.from('héllo'), contentType: 'text/plain' });
    expect(topicEventOf({ data: text.data, topic: 'orders', pubsubName: 'pubsub', rawPayload: false }).data.toString()).toBe('héllo');
    const bin = envelopeForPublish({ ...base, data: Buffer.from([9, 8, 7]), contentType: 'application/octet-stream' });
    expect(topicEventOf({ data: bin.data, topic: 'orders', pubsubName: 'pubsub', rawPayload: false }).data).toEqual(Buffer.from([9, 8, 7]));
  });

  it('the HTTP body is the stored envelope bytes as they are; a wrapped raw payload is serialised', () => {
    const { data } = envelopeForPublish({ ...base, data: Buffer.from('{"n":1}'), contentType: 'application/json' });
    const ev = topicEventOf({ data, topic: 'orders', pubsubName: 'pubsub', rawPayload: false });
    expect(envelopeBytes(ev)).toBe(data);
    expect(ev.data.toString()).toBe('{"n":1}');
    const raw = topicEventOf({ data, topic: 'orders', pubsubName: 'pubsub', rawPayload: true });
    expect(JSON.parse(envelopeBytes(raw).toString())).toEqual(raw.envelope);
    expect(raw.data).toEqual(data);
  });

  it('a raw subscription (or bytes that are not an envelope) gets them wrapped with data_base64', () => {
    for (const [data, raw] of [['{"a":1}', true], ['plain text', false]] as const) {
      const ev = topicEventOf({ data: Buffer.from(data), topic: 'orders', pubsubName: 'pubsub', rawPayload: raw });
      expect(ev.envelope).toMatchObject({ type: 'com.dapr.event.sent', specversion: '1.0', datacontenttype: 'application/octet-stream', topic: 'orders', pubsubname: 'pubsub' });
      expect(Buffer.from(ev.envelope.data_base64 as string, 'base64').toString()).toBe(data);
      expect(ev.data.toString()).toBe(data);
      expect(ev.id).toMatch(UUID);
    }
  });
});
