import { describe, expect, it } from 'vitest';
import type { EndpointSlice } from '../../src/api/types.js';
import { StringPool, trimEndpointSlice } from '../../src/sources/kubernetes/transform.js';

describe('object trimming', () => {
  it('drops managedFields, the last-applied annotation and targetRef, keeps other annotations, shares repeated strings', () => {
    const pool = new StringPool();
    const mk = (): EndpointSlice =>
      JSON.parse(
        JSON.stringify({
          metadata: {
            name: 's',
            namespace: 'default',
            managedFields: [{ manager: 'kube-controller-manager' }],
            annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', keep: 'me' },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['10.0.0.1'], nodeName: 'node-a', zone: 'z1', targetRef: { kind: 'Pod', namespace: 'default', name: 'p' } }],
        }),
      ) as EndpointSlice;
    const a = trimEndpointSlice(mk(), pool);
    expect('managedFields' in a.metadata).toBe(false);
    expect(a.metadata.annotations).toEqual({ keep: 'me' });
    expect(a.endpoints[0]).toEqual({ addresses: ['10.0.0.1'], nodeName: 'node-a', zone: 'z1' });
    const b = trimEndpointSlice(mk(), pool);
    expect(pool.intern('node-a')).toBe(b.endpoints[0]!.nodeName);
    expect(pool.intern(undefined)).toBeUndefined();
  });
});
