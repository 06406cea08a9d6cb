// The Kubernetes API source's entry point: picks the connection as kube-proxy
// does (--kubeconfig, else in-cluster, with --master overriding the server)
// and returns a ConfigSource.
import type { ConfigSource } from '../source.js';
import type { ApiConnection } from './connection.js';
import { staticToken } from './connection.js';
import { inClusterAvailable, loadInClusterConfig, type InClusterOptions } from './in-cluster.js';
import { loadKubeconfig, parseServer } from './kubeconfig.js';
import type { Logger, ReflectorTuning } from './reflector.js';
import { KubernetesSource } from './source.js';

export { KubernetesSource } from './source.js';
export type { ApiConnection } from './connection.js';

export interface KubernetesSourceFactoryOptions {
  kubeconfig?: string;
  master?: string;
  nodeName: string;
  log: Logger;
  /** Tests only: where the service-account files are, and which environment to read. */
  inCluster?: InClusterOptions;
  tuning?: ReflectorTuning;
}

export function resolveConnection(opts: { kubeconfig?: string; master?: string; inCluster?: InClusterOptions }): ApiConnection {
  if (opts.kubeconfig) return loadKubeconfig(opts.kubeconfig, { master: opts.master });
  const ic = { ...opts.inCluster, master: opts.master };
  if (inClusterAvailable(ic)) return loadInClusterConfig(ic);
  if (opts.master) {
    // kube-proxy accepts a bare --master (typically an insecure local port) without credentials.
    return { server: parseServer(opts.master, '--master'), insecureSkipTLSVerify: false, token: staticToken(undefined), origin: `--master ${opts.master}` };
  }
  return loadInClusterConfig(ic);
}

export function createKubernetesSource(opts: KubernetesSourceFactoryOptions): ConfigSource {
  if (!opts.nodeName) throw new Error('the Kubernetes source needs the node name (--hostname-override or the host name)');
  const connection = resolveConnection(opts);
  return new KubernetesSource({ connection, nodeName: opts.nodeName, log: opts.log, tuning: opts.tuning });
}
