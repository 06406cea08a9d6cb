#!/usr/bin/env node
// Connects to a service the way a client would and reports what happened, as
// JSON on stdout: one entry per attempt, with who answered and the source
// address the server saw, or "refused" / "timeout" / the error code.
//
//   node lab/probe.mjs --proto tcp|udp --count N [--timeout ms] [--source IP] [--sport PORT] HOST PORT
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const proto = opt('proto', 'tcp');
const count = Number(opt('count', '1'));
const timeout = Number(opt('timeout', '2000'));
const source = opt('source', undefined);
const sport = opt('sport', undefined);
const [host, portText] = args;
const port = Number(portText);
if (!host || !port) {
  console.error('usage: probe.mjs --proto tcp|udp --count N [--timeout ms] [--source IP] [--sport PORT] HOST PORT');
  process.exit(2);
}

function tcpOnce() {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const s = connect({ host, port, localAddress: source, localPort: sport ? Number(sport) : undefined });
    let data = '';
    const done = (r) => {
      clearTimeout(t);
      s.destroy();
      resolve({ ...r, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    };
    const t = setTimeout(() => done({ result: 'timeout' }), timeout);
    s.on('data', (d) => (data += d));
    s.on('end', () => done(parse(data)));
    s.on('error', (e) => done({ result: e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'EHOSTUNREACH' ? 'unreachable' : e.code || String(e) }));
  });
}

function udpOnce() {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const s = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const done = (r) => {
      clearTimeout(t);
      s.close();
      resolve({ ...r, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    };
    const t = setTimeout(() => done({ result: 'timeout' }), timeout);
    s.on('message', (m) => done(parse(String(m))));
    s.on('error', (e) => done({ result: e.code === 'ECONNREFUSED' ? 'refused' : e.code || String(e) }));
    const send = () => s.send('ping', port, host);
    if (source || sport) s.bind({ address: source, port: sport ? Number(sport) : 0 }, send);
    else send();
  });
}

function parse(line) {
  const [who, peer] = line.trim().split(/\s+/);
  if (!who) return { result: 'empty' };
  const i = peer ? peer.lastIndexOf(':') : -1;
  return { result: 'ok', server: who, sourceIP: i > 0 ? peer.slice(0, i) : peer, sourcePort: i > 0 ? Number(peer.slice(i + 1)) : undefined };
}

const out = [];
for (let i = 0; i < count; i++) out.push(await (proto === 'udp' ? udpOnce() : tcpOnce()));
process.stdout.write(JSON.stringify(out) + '\n');
