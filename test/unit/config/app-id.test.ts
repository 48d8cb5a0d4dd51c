/** Dapr app ids: `app` or `app.namespace` (dapr/dapr directMessaging.requestAppIDAndNamespace: one or two dot-separated parts). */
import { describe, expect, it } from 'vitest';
import { isValidAppId, parseAppId } from '../../../src/config/app-id.js';

describe('parseAppId', () => {
  it('splits app.namespace at the dot; the short form has no namespace', () => {
    expect(parseAppId('orders')).toEqual({ app: 'orders', namespace: undefined });
    expect(parseAppId('orders.prod')).toEqual({ app: 'orders', namespace: 'prod' });
    expect(parseAppId('my_app-2.team-a')).toEqual({ app: 'my_app-2', namespace: 'team-a' });
  });
  it('refuses more than one dot (Dapr: "invalid app id"), empty parts and other characters', () => {
    for (const bad of ['a.b.c', 'a.', '.b', '', 'a b', 'a/b', '-a', 'a-', 'a.-b', 'ü']) expect(isValidAppId(bad), bad).toBe(false);
  });
});
