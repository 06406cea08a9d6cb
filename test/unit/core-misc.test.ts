import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import { applyConfigText, defaultSettings } from '../../src/config/kube-proxy-config.js';
import { familyConfigs, resolveSettings } from '../../src/cli/proxy-command.js';
import { staleConntrackCommands } from '../../src/proxy/conntrack.js';
import { BoundedFrequencyRunner } from '../../src/proxy/core/runner.js';
import type { EndpointInfo, ServiceView } from '../../src/proxy/model.js';
import { parseManifest } from '../../src/sources/manifests/parse.js';

describe('durations and the config file', () => {
  it('parses Go durations and rejects the rest', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('0')).toBe(0);
    expect(() => parseDuration('30')).toThrow(/invalid duration/);
    expect(() => parseDuration('1x')).toThrow(/invalid duration/);
  });

  it('reads KubeProxyConfiguration, and command-line flags win over it', () => {
    const text = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nclusterCIDR: 10.244.0.0/16\niptables:\n  masqueradeAll: true\n  syncPeriod: 10s\nnftables:\n  minSyncPeriod: 2s\n';
    const s = applyConfigText(text, 'c.yaml', defaultSettings());
    expect(s.mode).toBe('nftables');
    expect(s.masqueradeAll).toBe(true);
    expect(s.syncPeriodMs).toBe(10_000);
    expect(s.minSyncPeriodMs).toBe(2_000);
    expect(() => applyConfigText('kind: Pod\n', 'c.yaml', defaultSettings())).toThrow(/want KubeProxyConfiguration/);
    expect(() => applyConfigText('iptables:\n  syncPeriod: 10\n', 'c.yaml', defaultSettings())).toThrow(/must be a string/);
  });

  it('applies flags over the file only when given on the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-t-core-'));
    try {
      writeFileSync(join(dir, 'c.yaml'), 'mode: nftables\nclusterCIDR: 10.244.0.0/16,fd00:244::/56\n');
      const given = new Set(['config', 'masqueradeAll']);
      const s = resolveSettings({ config: join(dir, 'c.yaml'), proxyMode: 'iptables', masqueradeAll: true }, (k) => given.has(k));
      expect(s.mode).toBe('nftables'); // default flag value does not override the file
      expect(s.masqueradeAll).toBe(true);
      const fams = familyConfigs(s);
      expect(fams.map((f) => [f.family, f.clusterCIDRs])).toEqual([[4, ['10.244.0.0/16']], [6, ['fd00:244::/56']]]);
      expect(() => resolveSettings({ clusterCidr: '10.244.0.0' }, () => true)).toThrow(/not a CIDR/);
      expect(() => resolveSettings({ clusterCidr: 'fe80::%eth0/64' }, () => true)).toThrow(/not a CIDR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('manifest parsing', () => {
  it('reads multi-document YAML and Lists, and reports bad documents with their place', () => {
    const text = [
      'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}',
      'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n  spec: {clusterIP: 10.96.0.2}',
      'kind: Service\nmetadata: {}\nspec: {}',
      'kind: ConfigMap\nmetadata: {name: ignored}',
    ].join('\n---\n');
    const p = parseManifest('x.yaml', text);
    expect(p.objects.map((o) => o.obj.metadata.name)).toEqual(['a', 'b']);
    expect(p.problems).toEqual(['x.yaml (document 3): Service without metadata.name']);
    const bad = parseManifest('y.json', '{"kind": ');
    expect(bad.objects).toEqual([]);
    expect(bad.problems[0]).toMatch(/^y\.json: /);
  });
});

describe('UDP conntrack cleanup', () => {
  const ep = (ip: string): EndpointInfo => ({ ip, port: 53, ready: true, serving: true, terminating: false, nodeName: 'n', zone: '', isLocal: true });
  const view = (eps: EndpointInfo[], protocol: 'UDP' | 'TCP' = 'UDP', nodePort = 0): ServiceView => ({
    info: { name: 'ns/dns:dns', namespace: 'ns', service: 'dns', portName: 'dns', protocol, clusterIP: '10.96.0.53', port: 53, nodePort, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], affinityTimeoutSeconds: 0, externalPolicyLocal: false, internalPolicyLocal: false, healthCheckNodePort: 0 },
    internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps,
  });

  it('deletes only the flows of the removed endpoint', () => {
    const cmds = staleConntrackCommands(4, ['ns/dns:dns'], new Map([['ns/dns:dns', view([ep('10.0.0.1'), ep('10.0.0.2')], 'UDP', 30053)]]), new Map([['ns/dns:dns', view([ep('10.0.0.2')], 'UDP', 30053)]]));
    expect(cmds).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '10.96.0.53', '--reply-src', '10.0.0.1'],
      ['-D', '-p', 'udp', '--orig-port-dst', '30053', '--reply-src', '10.0.0.1'],
    ]);
  });

  it('clears the service IP when it gets its first endpoint, and ignores TCP', () => {
    expect(staleConntrackCommands(6, ['ns/dns:dns'], new Map([['ns/dns:dns', view([])]]), new Map([['ns/dns:dns', view([ep('fd00::1')])]]))).toEqual([
      ['-D', '-f', 'ipv6', '-p', 'udp', '--orig-dst', '10.96.0.53', '--orig-port-dst', '53'],
    ]);
    expect(staleConntrackCommands(4, ['ns/dns:dns'], new Map([['ns/dns:dns', view([ep('10.0.0.1')], 'TCP')]]), new Map())).toEqual([]);
  });
});

describe('BoundedFrequencyRunner', () => {
  let runner: BoundedFrequencyRunner | undefined;
  afterEach(() => runner?.stop());

  it('coalesces bursts to one run per min interval and retries a failure', async () => {
    const runs: number[] = [];
    let fail = true;
    runner = new BoundedFrequencyRunner(
      async () => {
        runs.push(Date.now());
        if (fail) {
          fail = false;
          throw new Error('boom');
        }
      },
      200,
      60_000,
      () => {},
    );
    runner.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(runs.length).toBe(1); // the first run, which failed
    for (let i = 0; i < 10; i++) runner.run();
    await new Promise((r) => setTimeout(r, 1300));
    // one retry after the failure (≥ 1 s later); the burst of run() calls did not add ten runs
    expect(runs.length).toBe(2);
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(900);
    runner.run();
    await new Promise((r) => setTimeout(r, 300));
    expect(runs.length).toBe(3);
  });
});
