// podwire's command line: one subcommand per job, each in its own module.
import { Command } from 'commander';
import { labCommand } from './lab-command.js';
import { proxyCommand } from './proxy-command.js';

const program = new Command('podwire').description('node networking for Kubernetes: service proxy, CNI lab').version('0.1.0');
program.addCommand(proxyCommand());
program.addCommand(labCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
