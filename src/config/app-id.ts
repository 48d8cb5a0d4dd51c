/**
 * Dapr app ids as the invocation APIs take them: `app` (the caller's own namespace) or
 * `app.namespace` — dapr/dapr `directMessaging.requestAppIDAndNamespace` splits the id at its
 * dots and accepts one or two parts; more is "invalid app id". Each part here is letters, digits,
 * '-' and '_' (a Kubernetes namespace is a DNS label, a subset of that). The whole id is also the
 * Host the `capa-invocation` listener routes on and the dynamic forward proxy cluster resolves.
 */

const PART = /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$/;

export interface AppIdParts {
  /** The app id proper (what `dapr-callee-app-id` carries). */
  readonly app: string;
  /** The namespace after the dot; undefined for the short form. */
  readonly namespace: string | undefined;
}

/** undefined when `id` is not `app` or `app.namespace`. */
export function parseAppId(id: string): AppIdParts | undefined {
  const dot = id.indexOf('.');
  if (dot < 0) return PART.test(id) ? { app: id, namespace: undefined } : undefined;
  const app = id.slice(0, dot);
  const namespace = id.slice(dot + 1);
  return PART.test(app) && PART.test(namespace) ? { app, namespace } : undefined;
}

export function isValidAppId(id: string): boolean {
  return parseAppId(id) !== undefined;
}

export const APP_ID_RULE = "an app id is letters, digits, '-' and '_', optionally followed by '.<namespace>' (Dapr's app.namespace form)";
