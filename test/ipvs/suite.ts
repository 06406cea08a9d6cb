// The in-VM suite: every IPVS test in one process, one VM boot.
import './genl.js';
import { runTests } from './harness.js';

process.exitCode = (await runTests(process.argv[2])) > 0 ? 1 : 0;
