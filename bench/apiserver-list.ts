// npm run bench -- apiserver-list [services] [endpointsPerSlice] [pageSize]
// The initial list of 10,000 Services and 10,000 EndpointSlices (10 endpoints
// each) from the in-test API server over HTTPS on loopback: time until the
// Kubernetes source's onSynced, then until the core's change tracker has built
// the ProxyState's service views (no kernel apply), and RSS afterwards. The server runs in a child
// process so its memory and CPU are not counted.
import { ChangeTracker } from '../src/proxy/core/change-tracker.js';
import { createKubernetesSource } from '../src/sources/kubernetes/index.js';
import type { SourceHandler } from '../src/sources/source.js';
import { runBench, startClusterServer } from './lib/api-server.js';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10_000);
  const eps = Number(process.argv[3] ?? 10);
  const pageSize = Number(process.argv[4] ?? 500);
  const server = await startClusterServer(import.meta.url, n, eps);
  try {
    const kubeconfig = server.kubeconfig(`https://127.0.0.1:${server.port}`);
    const rssBefore = process.memoryUsage().rss;
    // The core's own change tracker receives the events, as in the daemon.
    const tracker = new ChangeTracker('node-0', [4]);
    let services = 0;
    let slices = 0;
    let endpoints = 0;
    let node = false;
    const t0 = performance.now();
    const synced = new Promise<void>((resolve) => {
      const h: SourceHandler = {
        onServiceUpsert: (s) => (services++, tracker.upsertService(s)),
        onServiceDelete: (s) => tracker.deleteService(s),
        onEndpointSliceUpsert: (s) => (slices++, (endpoints += s.endpoints.length), tracker.upsertSlice(s)),
        onEndpointSliceDelete: (s) => tracker.deleteSlice(s),
        onNodeUpsert: (x) => ((node = true), tracker.setNode(x.metadata.name, x.metadata.labels?.['topology.kubernetes.io/zone'] ?? '')),
        onNodeDelete: () => (node = false),
        onSynced: resolve,
      };
      const src = createKubernetesSource({ kubeconfig, nodeName: 'node-0', tuning: { pageSize }, log: { info() {}, warn: (m) => console.error(m), error: (m) => console.error(m) } });
      void src.start(h).then(() => synced.then(() => src.stop()));
    });
    await synced;
    const t1 = performance.now();
    const rssSynced = process.memoryUsage().rss;
    tracker.apply();
    const t2 = performance.now();
    const views = tracker.view(4).size;
    global.gc?.();
    const mem = process.memoryUsage();
    const rss = mem.rss;
    console.log(`  heap used ${(mem.heapUsed / 2 ** 20).toFixed(1)} MiB, heap total ${(mem.heapTotal / 2 ** 20).toFixed(1)} MiB, external ${(mem.external / 2 ** 20).toFixed(1)} MiB`);
    console.log(`apiserver-list: ${services} services, ${slices} endpointslices (${endpoints} endpoints), node ${node ? 'seen' : 'missing'}`);
    console.log(`  time to onSynced: ${((t1 - t0) / 1000).toFixed(2)} s`);
    console.log(`  time to the core's state (${views} service ports, change tracker applied): ${((t2 - t0) / 1000).toFixed(2)} s (target <= 3 s)`);
    console.log(`  RSS at onSynced (source + stored objects): ${(rssSynced / 2 ** 20).toFixed(1)} MiB`);
    console.log(`  RSS with the core's state built: ${(rss / 2 ** 20).toFixed(1)} MiB (before the list: ${(rssBefore / 2 ** 20).toFixed(1)} MiB, peak: ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MiB; target <= 150 MiB)`);
  } finally {
    server.stop();
  }
}

runBench(main);
