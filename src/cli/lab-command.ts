// `podwire lab up|status|down`: the network lab (src/lab/).
import { Command, Option } from 'commander';
import { labDown, labStatus, labUp } from '../lab/lab.js';
import { defaultOptions, type LabOptions } from '../lab/plan.js';

interface LabFlags {
  nodes: string;
  podsPerNode: string;
  proxyMode: string;
  prefix: string;
  stateDir: string;
  keep?: boolean;
}

function options(f: LabFlags): LabOptions {
  const nodes = Number(f.nodes);
  const podsPerNode = Number(f.podsPerNode);
  if (!Number.isInteger(nodes) || !Number.isInteger(podsPerNode)) throw new Error('--nodes and --pods-per-node take whole numbers');
  return { nodes, podsPerNode, proxyMode: f.proxyMode, prefix: f.prefix, stateDir: f.stateDir };
}

export function labCommand(): Command {
  const d = defaultOptions();
  const common = (c: Command) =>
    c
      .addOption(new Option('--prefix <prefix>', 'namespace name prefix').default(d.prefix))
      .addOption(new Option('--state-dir <dir>', 'where the lab keeps its state, logs and IPAM store').default(d.stateDir));
  const lab = new Command('lab').description('a cluster of network namespaces: nodes, pods, CNI and podwire proxy');
  common(
    lab
      .command('up')
      .description('build the lab, check every service, print a report')
      .addOption(new Option('--nodes <n>', 'nodes').default(String(d.nodes)))
      .addOption(new Option('--pods-per-node <n>', 'pods on each node').default(String(d.podsPerNode)))
      .addOption(new Option('--proxy-mode <mode>', 'podwire proxy mode').default(d.proxyMode))
      .option('--keep', 'leave the lab running to explore'),
  ).action(async (f: LabFlags) => process.exit(await labUp({ ...options(f), keep: !!f.keep })));
  common(lab.command('status').description("print the lab's topology and its proxies' state")).action(async (f: LabFlags) =>
    process.exit(await labStatus({ ...d, prefix: f.prefix, stateDir: f.stateDir })),
  );
  common(lab.command('down').description('remove everything the lab created')).action(async (f: LabFlags) => {
    await labDown({ ...d, prefix: f.prefix, stateDir: f.stateDir });
    process.exit(0);
  });
  return lab;
}
