// In-cluster configuration, as client-go's InClusterConfig: the API server
// from KUBERNETES_SERVICE_HOST/PORT, trusted through the service account's CA,
// authenticated with its (rotating) token.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileToken, type ApiConnection } from './connection.js';
import { parseServer } from './kubeconfig.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterOptions {
  /** Tests point this at a temporary directory. */
  serviceAccountDir?: string;
  env?: NodeJS.ProcessEnv;
  master?: string;
  tokenRefreshMs?: number;
}

/** Whether this process looks like it runs in a pod (the env and the token file are there). */
export function inClusterAvailable(opts: InClusterOptions = {}): boolean {
  const env = opts.env ?? process.env;
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  return !!env.KUBERNETES_SERVICE_HOST && !!env.KUBERNETES_SERVICE_PORT && existsSync(join(dir, 'token'));
}

export function loadInClusterConfig(opts: InClusterOptions = {}): ApiConnection {
  const env = opts.env ?? process.env;
  const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!opts.master && (!host || !port)) {
    throw new Error('in-cluster configuration needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (or pass --kubeconfig / --master)');
  }
  const token = fileToken(join(dir, 'token'), opts.tokenRefreshMs);
  token.get(); // fail now, clearly, if the token is not there
  let ca: Buffer;
  try {
    ca = readFileSync(join(dir, 'ca.crt'));
  } catch (err) {
    throw new Error(`in-cluster configuration: cannot read ${join(dir, 'ca.crt')}: ${(err as Error).message}`);
  }
  const hostPart = host && host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    server: parseServer(opts.master ?? `https://${hostPart}:${port}`, 'in-cluster configuration'),
    ca,
    insecureSkipTLSVerify: false,
    token,
    origin: 'in-cluster service account',
  };
}
