// The in-VM suite: every IPVS test in one process, one VM boot.
import './genl.js';
import './traffic.js';
import './features.js';
import { runTests } from './harness.js';

// Exit even when a failed test left a server process or a timer behind.
process.exit((await runTests(process.argv[2])) > 0 ? 1 : 0);
