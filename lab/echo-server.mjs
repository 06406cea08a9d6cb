#!/usr/bin/env node
// A pod's workload in the lab and the kernel tests: answers every TCP
// connection and every UDP datagram with one line, "<name> <peer-ip>:<peer-port>",
// so a client learns who answered and which source address the server saw.
//
//   node lab/echo-server.mjs --name pod-a [--tcp 8080] [--udp 8081] [--host ::]
// Prints "ready" on stdout once every socket listens.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const name = opt('name', 'server');
const host = opt('host', '::');
const tcpPorts = (opt('tcp', '8080') || '').split(',').filter(Boolean).map(Number);
const udpPorts = (opt('udp', '') || '').split(',').filter(Boolean).map(Number);

const strip = (a) => (a && a.startsWith('::ffff:') ? a.slice(7) : a);
let pending = tcpPorts.length + udpPorts.length;
const listening = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};

for (const port of tcpPorts) {
  const srv = createServer((sock) => {
    sock.on('error', () => {});
    sock.end(`${name} ${strip(sock.remoteAddress)}:${sock.remotePort}\n`);
  });
  srv.listen({ port, host, ipv6Only: false }, listening);
}
for (const port of udpPorts) {
  const sock = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: false });
  sock.on('message', (_msg, rinfo) => {
    sock.send(`${name} ${strip(rinfo.address)}:${rinfo.port}\n`, rinfo.port, rinfo.address);
  });
  sock.bind(port, host, listening);
}
process.on('SIGTERM', () => process.exit(0));
