/**
 * PublishEvent: validated as Layotto does (pubsub name, topic, known component), then handed to
 * the runtime's PubSubService, which makes the CloudEvents envelope (or keeps one the caller
 * sent as `application/cloudevents+json`) and resolves once the backend stored it.
 * `metadata["ttlInSeconds"]` gives the message a time-to-live (src/runtime/message-ttl.ts); a
 * value that is not a positive integer is INVALID_ARGUMENT naming it.
 */
import type { RuntimeServices } from '../../runtime/services.js';
import { invalid, wrap } from './errors.js';
import { findComponent, stringMap } from './stores.js';

export function pubsubHandlers(services: RuntimeServices) {
  return {
    async PublishEvent(req: { pubsub_name: string; topic: string; data: Buffer; data_content_type: string; metadata: Record<string, string> }) {
      if (!req.pubsub_name) throw invalid('pubsub_name is empty');
      if (!req.topic) throw invalid(`topic is empty in pubsub ${req.pubsub_name}`);
      findComponent(services, 'pubsub', req.pubsub_name, 'pubsub_name');
      await wrap(`error when publish to topic ${req.topic} in pubsub ${req.pubsub_name}`, () =>
        services.pubsub.publish({
          pubsubName: req.pubsub_name,
          topic: req.topic,
          data: req.data ?? Buffer.alloc(0),
          ...(req.data_content_type ? { contentType: req.data_content_type } : {}),
          metadata: stringMap(req.metadata),
        }),
      );
      return {};
    },
  };
}
