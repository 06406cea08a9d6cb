// Converging one virtual server (pure: kernel snapshot in, changes out).
// Real servers that are no longer wanted drain first, as kube-proxy's graceful
// termination does: weight 0 while TCP connections remain, deleted once the
// active and inactive counts reach 0. UDP and SCTP have no connection to wait
// for (net.ipv4.vs.expire_nodest_conn=1 moves their flows on), so those go at once.
import { destKeyString, type IpvsOp, type RealServerStatus, type VirtualServer } from '../../netlink/ipvs.js';
import type { DesiredServer } from './desired.js';

export interface KernelServer {
  readonly service: VirtualServer;
  readonly dests: readonly RealServerStatus[];
}

export interface ServerPlan {
  readonly ops: IpvsOp[];
  /** Real servers kept at weight 0 until their connections end. */
  readonly draining: number;
}

function defaultNetmask(s: VirtualServer): number {
  return s.netmask ?? (s.family === 6 ? 128 : 0xffffffff);
}

export function serviceDiffers(want: VirtualServer, have: VirtualServer): boolean {
  return (
    want.scheduler !== have.scheduler ||
    want.flags !== have.flags ||
    (want.flags & 1 ? want.timeout !== have.timeout : false) ||
    ((want.flags & 1) !== 0 && defaultNetmask(want) !== defaultNetmask(have))
  );
}

export function planServer(want: DesiredServer | undefined, have: KernelServer | undefined): ServerPlan {
  const ops: IpvsOp[] = [];
  let draining = 0;
  if (!want) {
    if (have) ops.push({ op: 'delete-service', service: have.service });
    return { ops, draining };
  }
  const svc = want.service;
  if (!have) {
    ops.push({ op: 'add-service', service: svc });
    for (const d of want.dests.values()) ops.push({ op: 'add-dest', service: svc, dest: d });
    return { ops, draining };
  }
  if (serviceDiffers(svc, have.service)) ops.push({ op: 'edit-service', service: svc });
  const present = new Set<string>();
  for (const d of have.dests) {
    const k = destKeyString(d);
    present.add(k);
    const w = want.dests.get(k);
    if (w) {
      if (w.weight !== d.weight || (w.forward ?? 'masq') !== d.forward) ops.push({ op: 'edit-dest', service: svc, dest: w });
      continue;
    }
    const graceful = svc.protocol === 'TCP' && d.activeConns + d.inactiveConns > 0;
    if (graceful) {
      draining++;
      if (d.weight !== 0) ops.push({ op: 'edit-dest', service: svc, dest: { address: d.address, port: d.port, weight: 0, forward: d.forward } });
    } else {
      ops.push({ op: 'delete-dest', service: svc, dest: d });
    }
  }
  for (const [k, d] of want.dests) if (!present.has(k)) ops.push({ op: 'add-dest', service: svc, dest: d });
  return { ops, draining };
}
