/**
 * Service invocation: `/v1.0/invoke/{appId}/method/{method}` (Dapr HTTP) and `InvokeService`
 * (Layotto gRPC) both end here. The request goes out through the proxy's own outbound path — an
 * internal HTTP listener whose virtual hosts are the app ids — so it gets the same routing,
 * filters, retries, metrics and tracing as the app's own traffic. App id → cluster comes from
 * `invocation.apps` (a cluster of the config, or endpoints resolved by name resolution).
 */

export interface InvokeRequest {
  readonly appId: string;
  /** Method path without a leading slash (`orders/new`). */
  readonly method: string;
  /** HTTP verb (GET, POST, ...). */
  readonly verb: string;
  /** Raw query string without `?` ('' for none). */
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly contentType?: string;
}

export interface InvokeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly contentType?: string;
}

export interface Invoker {
  /** Rejects with ComponentError('not-found') for an app id with no route, 'backend' when nothing answered. */
  invoke(req: InvokeRequest): Promise<InvokeResponse>;
}
