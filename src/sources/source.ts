// What every configuration source (the manifests directory, the Kubernetes
// API) gives the proxy core: one stream of object events, and one signal that
// the initial state is complete. The core never knows where objects came from.
import type { EndpointSlice, Node, ObjectIdentity, Service } from '../api/types.js';

export interface SourceHandler {
  onServiceUpsert(svc: Service): void;
  /** Deletes carry at least the object's identity (metadata); a watch's DELETED event passes the whole object. */
  onServiceDelete(svc: ObjectIdentity): void;
  onEndpointSliceUpsert(slice: EndpointSlice): void;
  onEndpointSliceDelete(slice: ObjectIdentity): void;
  /** Only the proxy's own Node (by name) is delivered. */
  onNodeUpsert(node: Node): void;
  onNodeDelete(node: ObjectIdentity): void;
  /** Called once, when every kind's initial list has been delivered. The proxy programs nothing before it. */
  onSynced(): void;
}

export interface ConfigSource {
  /** Starts delivering events; resolves once watching has begun (not necessarily synced). */
  start(handler: SourceHandler): Promise<void>;
  stop(): Promise<void>;
}
