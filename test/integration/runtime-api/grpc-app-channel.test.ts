/**
 * GrpcAppChannel against real gRPC apps serving Layotto's AppCallback (loaded from the layotto
 * package's proto): the subscription list, every TopicEventRequest field, the app's
 * SUCCESS / RETRY / DROP, errors and deadlines (reject = RETRY), UNIMPLEMENTED (DROP / no
 * subscriptions), an app that is down, and one connection kept for all calls.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcAppChannel } from '../../../src/runtime-api/grpc/index.js';
import type { AppSubscription, TopicEvent } from '../../../src/runtime/app-channel.js';
import { freePort } from '../../helpers/http.js';

const require = createRequire(import.meta.url);
const PROTO_ROOT = join(dirname(require.resolve('layotto/package.json')), 'proto');
const logger = pino({ level: process.env.CAPA_TEST_LOG ?? 'silent' });

function appCallbackService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(join(PROTO_ROOT, 'runtime/v1/appcallback.proto'), { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [PROTO_ROOT] });
  return (grpc.loadPackageDefinition(def) as any).spec.proto.runtime.v1.AppCallback.service;
}

async function serve(impl: grpc.UntypedServiceImplementation | null): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  if (impl) server.addService(appCallbackService(), impl);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

const SUB: AppSubscription = { pubsubName: 'pubsub', topic: 'orders', route: '', metadata: {} };

function event(over: Partial<TopicEvent> = {}): TopicEvent {
  return {
    id: 'ev-1',
    source: 'checkout',
    type: 'com.dapr.event.sent',
    specVersion: '1.0',
    dataContentType: 'application/json',
    data: Buffer.from('{"n":1}'),
    topic: 'orders',
    pubsubName: 'pubsub',
    envelope: {},
    metadata: { traceparent: '00-abc' },
    ...over,
  };
}

describe('GrpcAppChannel', () => {
  const received: any[] = [];
  const peers: string[] = [];
  let app: Awaited<ReturnType<typeof serve>>;
  let channel: GrpcAppChannel;

  beforeAll(async () => {
    app = await serve({
      ListTopicSubscriptions: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
        peers.push(call.getPeer());
        cb(null, { subscriptions: [{ pubsub_name: 'pubsub', topic: 'orders', metadata: { consumerGroup: 'g1' } }, { pubsub_name: 'nats', topic: 'audit' }] });
      },
      OnTopicEvent: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
        peers.push(call.getPeer());
        const req = call.request;
        received.push(req);
        const want = req.metadata.answer;
        if (want === 'error') return cb({ code: grpc.status.INTERNAL, details: 'handler blew up' });
        if (want === 'unimplemented') return cb({ code: grpc.status.UNIMPLEMENTED, details: 'no handler' });
        if (want === 'hang') return setTimeout(() => cb(null, { status: 'SUCCESS' }), 1000);
        if (want === 'unknown') return cb(null, { status: 7 });
        cb(null, { status: want ?? 'SUCCESS' });
      },
    });
    channel = new GrpcAppChannel(`127.0.0.1:${app.port}`, logger, { deliverTimeoutMs: 300 });
  });
  afterAll(async () => {
    await channel?.close();
    await app?.close();
  });

  it('is the grpc protocol and lists the app subscriptions with their metadata', async () => {
    expect(channel.protocol).toBe('grpc');
    expect(await channel.listSubscriptions()).toEqual([
      { pubsubName: 'pubsub', topic: 'orders', route: '', metadata: { consumerGroup: 'g1' } },
      { pubsubName: 'nats', topic: 'audit', route: '', metadata: {} },
    ]);
  });

  it('sends every TopicEventRequest field from the TopicEvent', async () => {
    expect(await channel.deliver(SUB, event())).toBe('SUCCESS');
    const req = received.at(-1);
    expect(req).toMatchObject({
      id: 'ev-1',
      source: 'checkout',
      type: 'com.dapr.event.sent',
      spec_version: '1.0',
      data_content_type: 'application/json',
      topic: 'orders',
      pubsub_name: 'pubsub',
      metadata: { traceparent: '00-abc' },
    });
    expect(req.data.toString()).toBe('{"n":1}');
  });

  it('returns the app\'s RETRY and DROP; UNIMPLEMENTED is DROP', async () => {
    expect(await channel.deliver(SUB, event({ metadata: { answer: 'RETRY' } }))).toBe('RETRY');
    expect(await channel.deliver(SUB, event({ metadata: { answer: 'DROP' } }))).toBe('DROP');
    expect(await channel.deliver(SUB, event({ metadata: { answer: 'unimplemented' } }))).toBe('DROP');
  });

  it('an app error, an unknown status or a missed deadline rejects (counted as RETRY)', async () => {
    await expect(channel.deliver(SUB, event({ metadata: { answer: 'error' } }))).rejects.toThrow(/OnTopicEvent failed for event ev-1: .*handler blew up/);
    await expect(channel.deliver(SUB, event({ metadata: { answer: 'unknown' } }))).rejects.toThrow(/unknown OnTopicEvent status 7/);
    const t0 = Date.now();
    await expect(channel.deliver(SUB, event({ metadata: { answer: 'hang' } }))).rejects.toThrow(/DEADLINE_EXCEEDED|Deadline exceeded/i);
    expect(Date.now() - t0).toBeLessThan(900);
  });

  it('keeps one connection for all calls', async () => {
    await channel.listSubscriptions();
    await channel.deliver(SUB, event());
    expect(new Set(peers).size).toBe(1);
  });

  it('an app without AppCallback has no subscriptions and its events are dropped', async () => {
    const bare = await serve(null);
    const ch = new GrpcAppChannel(`127.0.0.1:${bare.port}`, logger);
    try {
      expect(await ch.listSubscriptions()).toEqual([]);
      expect(await ch.deliver(SUB, event())).toBe('DROP');
    } finally {
      await ch.close();
      await bare.close();
    }
  });

  it('an app that is down: listSubscriptions and deliver reject naming the address', async () => {
    const port = await freePort();
    const ch = new GrpcAppChannel(`127.0.0.1:${port}`, logger, { listTimeoutMs: 500, deliverTimeoutMs: 500 });
    try {
      await expect(ch.listSubscriptions()).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port}: ListTopicSubscriptions failed`));
      await expect(ch.deliver(SUB, event())).rejects.toThrow(/OnTopicEvent failed/);
    } finally {
      await ch.close();
    }
  });
});
