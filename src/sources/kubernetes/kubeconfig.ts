// Loads a kubeconfig file the way kubectl reads its current context: the
// cluster's server and CA, the user's client certificate/key or token.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { fileToken, staticToken, type ApiConnection, type TokenSource } from './connection.js';

interface NamedCluster {
  name: string;
  cluster?: {
    server?: string;
    'certificate-authority'?: string;
    'certificate-authority-data'?: string;
    'insecure-skip-tls-verify'?: boolean;
  };
}
interface NamedUser {
  name: string;
  user?: {
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    token?: string;
    tokenFile?: string;
  };
}
interface NamedContext {
  name: string;
  context?: { cluster?: string; user?: string };
}
interface KubeconfigFile {
  'current-context'?: string;
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
}

export interface KubeconfigOptions {
  /** --master: overrides the cluster's server. */
  master?: string;
}

export function loadKubeconfig(path: string, opts: KubeconfigOptions = {}): ApiConnection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
  }
  let doc: KubeconfigFile;
  try {
    doc = (parse(text) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new Error(`kubeconfig ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return connectionFromKubeconfig(doc, path, opts);
}

function connectionFromKubeconfig(doc: KubeconfigFile, path: string, opts: KubeconfigOptions): ApiConnection {
  const baseDir = dirname(path);
  const ctxName = doc['current-context'];
  const ctx = ctxName ? doc.contexts?.find((c) => c.name === ctxName) : doc.contexts?.[0];
  if (ctxName && !ctx) throw new Error(`kubeconfig ${path}: current-context "${ctxName}" is not among its contexts`);
  const clusterName = ctx?.context?.cluster;
  const cluster = clusterName ? doc.clusters?.find((c) => c.name === clusterName) : doc.clusters?.[0];
  if (clusterName && !cluster) throw new Error(`kubeconfig ${path}: context "${ctx?.name}" names cluster "${clusterName}", which is not defined`);
  const userName = ctx?.context?.user;
  const user = userName ? doc.users?.find((u) => u.name === userName) : undefined;
  if (userName && !user) throw new Error(`kubeconfig ${path}: context "${ctx?.name}" names user "${userName}", which is not defined`);

  const c = cluster?.cluster ?? {};
  const server = opts.master ?? c.server;
  if (!server) throw new Error(`kubeconfig ${path}: no server for context "${ctx?.name ?? '(none)'}" and no --master`);
  const u = user?.user ?? {};
  const read = (what: string, data: string | undefined, file: string | undefined): Buffer | undefined => {
    if (data) return Buffer.from(data, 'base64');
    if (!file) return undefined;
    const p = isAbsolute(file) ? file : resolve(baseDir, file);
    try {
      return readFileSync(p);
    } catch (err) {
      throw new Error(`kubeconfig ${path}: cannot read ${what} ${p}: ${(err as Error).message}`);
    }
  };
  let token: TokenSource = staticToken(u.token);
  if (!u.token && u.tokenFile) token = fileToken(isAbsolute(u.tokenFile) ? u.tokenFile : resolve(baseDir, u.tokenFile));
  const cert = read('client-certificate', u['client-certificate-data'], u['client-certificate']);
  const key = read('client-key', u['client-key-data'], u['client-key']);
  if (!!cert !== !!key) throw new Error(`kubeconfig ${path}: user "${userName}" has a client certificate without a key, or a key without a certificate`);
  return {
    server: parseServer(server, `kubeconfig ${path}`),
    ca: read('certificate-authority', c['certificate-authority-data'], c['certificate-authority']),
    cert,
    key,
    insecureSkipTLSVerify: c['insecure-skip-tls-verify'] === true,
    token,
    origin: `kubeconfig ${path} (context ${ctx?.name ?? '(none)'})`,
  };
}

export function parseServer(server: string, origin: string): URL {
  let url: URL;
  try {
    url = new URL(server.includes('://') ? server : `https://${server}`);
  } catch {
    throw new Error(`${origin}: server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${origin}: server "${server}" must be http(s)`);
  return url;
}
