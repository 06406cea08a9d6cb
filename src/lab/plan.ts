// The lab's topology and addressing, decided before anything is created, so
// up, status and down agree on every name.
export interface LabOptions {
  prefix: string;
  nodes: number;
  podsPerNode: number;
  proxyMode: string;
  stateDir: string;
}

export interface PlannedNode {
  index: number;
  name: string;
  ns: string;
  underlayIP: string;
  podCIDR: string;
}

export interface PlannedPod {
  name: string;
  ns: string;
  node: number;
  containerId: string;
}

export interface Plan {
  opts: LabOptions;
  underlay: string;
  client: string;
  clientIP: string;
  nodes: PlannedNode[];
  pods: PlannedPod[];
}

export const UNDERLAY_CIDR = '10.0.0.0/24';
export const SERVICE_CIDR = '10.96.0.0/16';
export const EXTERNAL_CIDR = '203.0.113.0/24';
export const CLUSTER_CIDR = '10.244.0.0/16';

export function defaultOptions(): LabOptions {
  return { prefix: 'pw-lab-', nodes: 2, podsPerNode: 3, proxyMode: 'iptables', stateDir: '/run/podwire-lab' };
}

export function makePlan(opts: LabOptions): Plan {
  if (!/^pw-[a-z0-9-]*$/.test(opts.prefix)) throw new Error(`--prefix must start with "pw-" (got "${opts.prefix}")`);
  if (opts.nodes < 1 || opts.nodes > 9) throw new Error('--nodes must be 1 to 9');
  if (opts.podsPerNode < 1 || opts.podsPerNode > 50) throw new Error('--pods-per-node must be 1 to 50');
  const nodes: PlannedNode[] = [];
  const pods: PlannedPod[] = [];
  for (let i = 1; i <= opts.nodes; i++) {
    nodes.push({ index: i, name: `node-${i}`, ns: `${opts.prefix}node-${i}`, underlayIP: `10.0.0.${10 + i}`, podCIDR: `10.244.${i}.0/24` });
    for (let p = 1; p <= opts.podsPerNode; p++) {
      const name = `n${i}-pod${p}`;
      pods.push({ name, ns: `${opts.prefix}${name}`, node: i, containerId: `lab-${name}` });
    }
  }
  return { opts, underlay: `${opts.prefix}underlay`, client: `${opts.prefix}client`, clientIP: '10.0.0.100', nodes, pods };
}
