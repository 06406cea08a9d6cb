// The Kubernetes API as a ConfigSource: three reflectors (Services,
// EndpointSlices, the proxy's own Node) feeding one SourceHandler, with the
// same server-side filtering as kube-proxy, and onSynced once all three have
// completed their first list.
import type { EndpointSlice, Node, Service } from '../../api/types.js';
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME } from '../../api/types.js';
import type { ConfigSource, SourceHandler } from '../source.js';
import { ApiClient } from './client.js';
import type { ApiConnection } from './connection.js';
import { Reflector, type Logger, type ReflectorTuning } from './reflector.js';
import { StringPool, trimEndpointSlice, trimMeta } from './transform.js';

export const SERVICE_LABEL_SELECTOR = `!${LABEL_SERVICE_PROXY_NAME},!${LABEL_HEADLESS}`;
export const ENDPOINTSLICE_LABEL_SELECTOR = `!${LABEL_HEADLESS},!${LABEL_SERVICE_PROXY_NAME}`;

export interface KubernetesSourceOptions {
  connection: ApiConnection;
  nodeName: string;
  log: Logger;
  tuning?: ReflectorTuning;
}

export class KubernetesSource implements ConfigSource {
  private ctl: AbortController | undefined;
  private runs: Promise<void>[] = [];
  private client: ApiClient | undefined;

  constructor(private readonly opts: KubernetesSourceOptions) {}

  async start(handler: SourceHandler): Promise<void> {
    if (this.ctl) throw new Error('the Kubernetes source is already started');
    const { connection, nodeName, log, tuning } = this.opts;
    this.ctl = new AbortController();
    const client = new ApiClient(connection, { requestTimeoutMs: tuning?.requestTimeoutMs });
    this.client = client;
    const pool = new StringPool();
    const trimmed = (o: Service | Node) => trimMeta(o.metadata, pool);
    let pending = 3;
    const oneSynced = () => {
      pending--;
      if (pending === 0) {
        log.info('initial lists of Services, EndpointSlices and the Node are complete');
        handler.onSynced();
      }
    };
    const services = new Reflector<Service>(
      client,
      { name: 'services', path: '/api/v1/services', labelSelector: SERVICE_LABEL_SELECTOR, transform: trimmed },
      { upsert: (s) => handler.onServiceUpsert(s), delete: (s) => handler.onServiceDelete(s), synced: oneSynced },
      log,
      tuning,
    );
    const slices = new Reflector<EndpointSlice>(
      client,
      { name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: ENDPOINTSLICE_LABEL_SELECTOR, transform: (s: EndpointSlice) => void trimEndpointSlice(s, pool) },
      { upsert: (s) => handler.onEndpointSliceUpsert(s), delete: (s) => handler.onEndpointSliceDelete(s), synced: oneSynced },
      log,
      tuning,
    );
    const node = new Reflector<Node>(
      client,
      { name: `node ${nodeName}`, path: '/api/v1/nodes', fieldSelector: `metadata.name=${nodeName}`, transform: trimmed },
      { upsert: (n) => handler.onNodeUpsert(n), delete: (n) => handler.onNodeDelete(n), synced: oneSynced },
      log,
      tuning,
    );
    log.info(`watching the API server at ${connection.server.origin} (${connection.origin}) for node ${nodeName}`);
    const signal = this.ctl.signal;
    this.runs = [services, slices, node].map((r) =>
      r.run(signal).catch((err: unknown) => log.error(`reflector for ${r.resource.name} stopped: ${(err as Error).message}`)),
    );
  }

  async stop(): Promise<void> {
    this.ctl?.abort();
    await Promise.all(this.runs);
    this.client?.close();
    this.runs = [];
    this.ctl = undefined;
  }
}
