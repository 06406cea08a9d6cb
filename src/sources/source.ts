// What every configuration source (the manifests directory, the Kubernetes
// API) gives the proxy core: one stream of object events, and one signal that
// the initial state is complete. The core never knows where objects came from.
import type { EndpointSlice, Node, Service } from '../api/types.js';

export interface SourceHandler {
  onServiceUpsert(svc: Service): void;
  onServiceDelete(svc: Service): void;
  onEndpointSliceUpsert(slice: EndpointSlice): void;
  onEndpointSliceDelete(slice: EndpointSlice): void;
  /** Only the proxy's own Node (by name) is delivered. */
  onNodeUpsert(node: Node): void;
  onNodeDelete(node: Node): void;
  /** Called once, when every kind's initial list has been delivered. The proxy programs nothing before it. */
  onSynced(): void;
}

export interface ConfigSource {
  /** Starts delivering events; resolves once watching has begun (not necessarily synced). */
  start(handler: SourceHandler): Promise<void>;
  stop(): Promise<void>;
}
