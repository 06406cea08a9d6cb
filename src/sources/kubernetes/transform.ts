// What the source does to each object before anyone keeps it, like client-go's
// TransformStripManagedFields: drop what podwire never reads but a real API
// server sends (managedFields, last-applied annotations often outweigh the
// object, and endpoints' targetRef), and share the strings repeated across 100,000s of endpoints (node
// names, zones, namespaces), so a big cluster costs less memory.
import type { EndpointSlice, ObjectMeta } from '../../api/types.js';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export class StringPool {
  private readonly pool = new Map<string, string>();
  intern(s: string): string;
  intern(s: string | undefined): string | undefined;
  intern(s: string | undefined): string | undefined {
    if (s === undefined) return s;
    const have = this.pool.get(s);
    if (have !== undefined) return have;
    // Bounded: a pathological stream of unique values must not grow it forever.
    if (this.pool.size < 100_000) this.pool.set(s, s);
    return s;
  }
}

export function trimMeta(meta: ObjectMeta & { managedFields?: unknown }, pool: StringPool): void {
  delete meta.managedFields;
  if (meta.annotations && LAST_APPLIED in meta.annotations) delete meta.annotations[LAST_APPLIED];
  if (meta.namespace !== undefined) meta.namespace = pool.intern(meta.namespace);
}

export function trimEndpointSlice(slice: EndpointSlice, pool: StringPool): EndpointSlice {
  trimMeta(slice.metadata, pool);
  for (const ep of slice.endpoints ?? []) {
    if (ep.nodeName !== undefined) ep.nodeName = pool.intern(ep.nodeName);
    if (ep.zone !== undefined) ep.zone = pool.intern(ep.zone);
    // Which pod backs an endpoint is never read by a proxy (kube-proxy neither); at 100,000s of endpoints it
    // is the largest part of a slice.
    delete ep.targetRef;
  }
  return slice;
}
