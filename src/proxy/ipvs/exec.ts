// The IPVS backend's helper programs (ipset, iptables) run through the proxy's shared runner.
export { runIn, type ProgramResult } from '../program.js';
