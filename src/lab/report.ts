// What `lab up` and `lab status` print: a picture of the topology and a table of checks.
import type { LabState } from './build.js';
import type { CheckResult } from './checks.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r, j) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + (j === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : '')).join('\n');
}

export function topologyPicture(state: LabState, syncMs?: Map<number, number>): string {
  const p = state.plan;
  const lines: string[] = [];
  lines.push(`  external client ${p.client} ${p.clientIP}`);
  lines.push(`        |`);
  lines.push(`  underlay br-underlay 10.0.0.0/24 (${p.underlay})`);
  for (const n of p.nodes) {
    const sync = syncMs?.get(n.index);
    lines.push(`        |`);
    lines.push(`  ${n.name} ${n.underlayIP}  [${n.ns}]  podwire proxy (${p.opts.proxyMode})${sync !== undefined ? `, sync ${sync.toFixed(1)} ms` : ''}`);
    lines.push(`     cni0 ${n.podCIDR.replace('.0/24', '.1/24')}`);
    for (const pod of state.pods.filter((x) => x.node === n.index)) {
      lines.push(`       +-- ${pod.name.padEnd(10)} ${pod.ip.padEnd(12)} CNI ADD ${pod.addMs.toFixed(1).padStart(6)} ms   [${pod.ns}]`);
    }
  }
  return lines.join('\n');
}

export function checksTable(results: CheckResult[]): string {
  return table([['SERVICE', 'FROM', 'EXPECTED', 'WHO ANSWERED', 'RESULT'], ...results.map((r) => [r.service, r.from, r.expected, r.got, r.pass ? 'pass' : 'FAIL'])]);
}
