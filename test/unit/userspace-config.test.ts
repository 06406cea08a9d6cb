import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/proxy-command.js';
import { applyConfigText, defaultSettings } from '../../src/config/kube-proxy-config.js';
import { backendFactories } from '../../src/proxy/backends.js';

describe('userspace mode settings', () => {
  it('--udp-timeout defaults to kube-proxy\'s 250ms and is read from the flag', () => {
    expect(defaultSettings().udpIdleTimeoutMs).toBe(250);
    expect(resolveSettings({ udpTimeout: '2s' }, (k) => k === 'udpTimeout').udpIdleTimeoutMs).toBe(2000);
    expect(() => resolveSettings({ udpTimeout: '0s' }, (k) => k === 'udpTimeout')).toThrow(/greater than 0/);
  });

  it('udpIdleTimeout is read from a KubeProxyConfiguration; the flag given on the command line wins', () => {
    const s = applyConfigText('kind: KubeProxyConfiguration\nmode: userspace\nudpIdleTimeout: 1m\n', 'c.yaml', defaultSettings());
    expect(s.mode).toBe('userspace');
    expect(s.udpIdleTimeoutMs).toBe(60_000);
    expect(() => applyConfigText('udpIdleTimeout: soon\n', 'c.yaml', defaultSettings())).toThrow(/invalid duration/);
    const dir = mkdtempSync(join(tmpdir(), 'pw-us-config-'));
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, 'kind: KubeProxyConfiguration\nudpIdleTimeout: 1m\n');
      expect(resolveSettings({ config: file, udpTimeout: '250ms' }, (k) => k === 'config').udpIdleTimeoutMs).toBe(60_000);
      expect(resolveSettings({ config: file, udpTimeout: '3s' }, (k) => k === 'config' || k === 'udpTimeout').udpIdleTimeoutMs).toBe(3000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('userspace is a registered --proxy-mode', () => {
    expect(Object.keys(backendFactories)).toContain('userspace');
  });
});
