import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileToken } from '../../src/sources/kubernetes/connection.js';
import { inClusterAvailable, loadInClusterConfig } from '../../src/sources/kubernetes/in-cluster.js';
import { loadKubeconfig } from '../../src/sources/kubernetes/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'pw-t-kapi-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const two = `
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: ca
  cluster: { server: "https://a.example:6443", certificate-authority-data: ${Buffer.from('CA-A').toString('base64')} }
- name: cb
  cluster: { server: "https://b.example:6443", certificate-authority: ca-b.crt, insecure-skip-tls-verify: false }
users:
- name: ua
  user: { token: tok-a }
- name: ub
  user: { client-certificate: b.crt, client-key-data: ${Buffer.from('KEY-B').toString('base64')} }
contexts:
- name: a
  context: { cluster: ca, user: ua }
- name: b
  context: { cluster: cb, user: ub }
`;

describe('kubeconfig', () => {
  writeFileSync(join(dir, 'ca-b.crt'), 'CA-B');
  writeFileSync(join(dir, 'b.crt'), 'CERT-B');

  it('follows current-context to its cluster and user, resolving relative files next to the kubeconfig', () => {
    const c = loadKubeconfig(kubeconfig('two.yaml', two));
    expect(c.server.href).toBe('https://b.example:6443/');
    expect(c.ca?.toString()).toBe('CA-B');
    expect(c.cert?.toString()).toBe('CERT-B');
    expect(c.key?.toString()).toBe('KEY-B');
    expect(c.token.get()).toBeUndefined();
    expect(c.insecureSkipTLSVerify).toBe(false);
  });

  it('--master overrides the server', () => {
    const c = loadKubeconfig(join(dir, 'two.yaml'), { master: 'https://127.0.0.1:1234' });
    expect(c.server.href).toBe('https://127.0.0.1:1234/');
  });

  it('reads a token and a token file', () => {
    writeFileSync(join(dir, 'tok'), 'from-file\n');
    const p = kubeconfig(
      'tok.yaml',
      `current-context: x
clusters: [{ name: c, cluster: { server: "https://h:1", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { tokenFile: tok } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
`,
    );
    const c = loadKubeconfig(p);
    expect(c.token.get()).toBe('from-file');
    expect(c.insecureSkipTLSVerify).toBe(true);
  });

  it('names what is wrong', () => {
    expect(() => loadKubeconfig(join(dir, 'missing.yaml'))).toThrow(/cannot read kubeconfig .*missing\.yaml/);
    const bad = kubeconfig('bad.yaml', 'current-context: nope\ncontexts: []\n');
    expect(() => loadKubeconfig(bad)).toThrow(/current-context "nope" is not among its contexts/);
    const nouser = kubeconfig('nouser.yaml', 'current-context: x\nclusters: [{name: c, cluster: {server: "https://h:1"}}]\ncontexts: [{name: x, context: {cluster: c, user: ghost}}]\n');
    expect(() => loadKubeconfig(nouser)).toThrow(/user "ghost", which is not defined/);
    const nocert = kubeconfig('nocert.yaml', 'current-context: x\nclusters: [{name: c, cluster: {server: "https://h:1"}}]\nusers: [{name: u, user: {client-certificate: /nonexistent/c.crt}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n');
    expect(() => loadKubeconfig(nocert)).toThrow(/cannot read client-certificate \/nonexistent\/c\.crt/);
  });
});

describe('token file', () => {
  it('is re-read after the refresh period, and keeps the last token while the file is missing', () => {
    const p = join(dir, 'rot');
    writeFileSync(p, 'one');
    let now = 0;
    const t = fileToken(p, 1000, () => now);
    expect(t.get()).toBe('one');
    writeFileSync(p, 'two');
    now = 500;
    expect(t.get()).toBe('one');
    now = 1000;
    expect(t.get()).toBe('two');
    rmSync(p);
    now = 5000;
    expect(t.get()).toBe('two');
  });
});

describe('in-cluster configuration', () => {
  it('uses KUBERNETES_SERVICE_HOST/PORT and the service-account files', () => {
    const sa = join(dir, 'sa');
    rmSync(sa, { recursive: true, force: true });
    expect(inClusterAvailable({ serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' } })).toBe(false);
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), 'SA-CA');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    expect(inClusterAvailable({ serviceAccountDir: sa, env })).toBe(true);
    const c = loadInClusterConfig({ serviceAccountDir: sa, env });
    expect(c.server.href).toBe('https://[fd00::1]/');
    expect(c.ca?.toString()).toBe('SA-CA');
    expect(c.token.get()).toBe('sa-token');
    expect(() => loadInClusterConfig({ serviceAccountDir: sa, env: {} })).toThrow(/KUBERNETES_SERVICE_HOST/);
  });
});
