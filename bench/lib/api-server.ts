// The in-bench API server serving the synthetic cluster, in a child process so
// its memory and CPU are not the benchmark's. A bench forks itself with
// `--serve DIR N EPS` and calls serveCluster there, startClusterServer here.
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENDPOINTSLICES, FakeApiServer, loadTestCerts, makeTestCerts, NODES, SERVICES, type TestCerts } from '../../test/helpers/fake-apiserver.js';
import { clusterObjects } from './cluster-objects.js';

export const TOKEN = 'bench-token';

/** In the child: HTTPS on a loopback port, and on DIR/api.sock (for namespaces with no link to the host). */
export async function serveCluster(dir: string, n: number, eps: number): Promise<void> {
  const api = await FakeApiServer.start(loadTestCerts(dir), { token: TOKEN });
  await api.listenUnix(join(dir, 'api.sock'));
  const { services, slices, node } = clusterObjects(n, eps);
  api.bulkLoad(SERVICES, services);
  api.bulkLoad(ENDPOINTSLICES, slices);
  api.upsert(NODES, node);
  process.send?.({ port: api.port });
}

export interface ClusterServer {
  certs: TestCerts;
  port: number;
  /** DIR/api.sock */
  socket: string;
  /** Writes a kubeconfig for `server` (an https URL) with the bench's token; returns its path. */
  kubeconfig(server: string): string;
  stop(): void;
}

/** Forks the bench at `benchUrl` (its import.meta.url) as the server and waits until it listens. */
export async function startClusterServer(benchUrl: string, n: number, eps: number): Promise<ClusterServer> {
  const certs = await makeTestCerts();
  const child = fork(fileURLToPath(benchUrl), ['--serve', certs.dir, String(n), String(eps)], { stdio: 'inherit' });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`fake API server exited (${code})`)));
    });
    return {
      certs,
      port,
      socket: join(certs.dir, 'api.sock'),
      kubeconfig(server) {
        const path = join(certs.dir, 'kubeconfig');
        writeFileSync(path, `current-context: b\nclusters: [{name: c, cluster: {server: "${server}", certificate-authority: ${certs.caFile}}}]\nusers: [{name: u, user: {token: ${TOKEN}}}]\ncontexts: [{name: b, context: {cluster: c, user: u}}]\n`);
        return path;
      },
      stop() {
        child.kill();
        certs.cleanup();
      },
    };
  } catch (err) {
    child.kill();
    certs.cleanup();
    throw err;
  }
}

/** The entry of a bench that serves as its own API server child. */
export function runBench(main: () => Promise<void>): void {
  if (process.argv[2] === '--serve') {
    void serveCluster(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
    return;
  }
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
