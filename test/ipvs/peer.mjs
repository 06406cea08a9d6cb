// Traffic helper run inside a namespace by the in-VM suite:
//   node peer.mjs serve NAME PORT      HTTP (and UDP) server on PORT, both families: "/" answers NAME,
//                                      "/who" and every datagram answer "NAME SOURCE" (the source it saw); prints "listening"
//   node peer.mjs get [--from IP] [--timeout MS] URL [URL...]
//                                      one GET per URL, prints a JSON array of bodies or "ERR <code>"
//   node peer.mjs udp [--from IP] [--sport N] [--timeout MS] HOST PORT COUNT
//                                      COUNT datagrams one after another from one source port, prints a JSON array of
//                                      replies or "ERR timeout"
//   node peer.mjs hold HOST PORT       opens a TCP connection, prints "open", keeps it until stdin closes
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

const [mode, ...rest] = process.argv.slice(2);
const opt = { from: undefined, timeout: 3000, sport: 0 };
const args = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--from') opt.from = rest[++i];
  else if (rest[i] === '--timeout') opt.timeout = Number(rest[++i]);
  else if (rest[i] === '--sport') opt.sport = Number(rest[++i]);
  else args.push(rest[i]);
}
const plain = (a) => (a ?? '').replace(/^::ffff:/, '');

if (mode === 'serve') {
  const [name, port] = args;
  const server = http.createServer((req, res) => res.end(req.url === '/who' ? `${name} ${plain(req.socket.remoteAddress)}` : name));
  const udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  udp.on('message', (_m, r) => udp.send(`${name} ${plain(r.address)}`, r.port, r.address));
  udp.bind(Number(port), '::', () => server.listen(Number(port), '::', () => console.log('listening')));
} else if (mode === 'get') {
  const out = [];
  for (const url of args) {
    out.push(
      await new Promise((resolve) => {
        const req = http.get(url, { timeout: opt.timeout, agent: false, localAddress: opt.from }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        });
        req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
        req.on('error', (e) => resolve(`ERR ${e.code ?? e.message}`));
      }),
    );
  }
  console.log(JSON.stringify(out));
} else if (mode === 'udp') {
  const [host, port, count] = args;
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  await new Promise((resolve) => sock.bind({ port: opt.sport, address: opt.from }, resolve));
  const out = [];
  for (let i = 0; i < Number(count); i++) {
    out.push(
      await new Promise((resolve) => {
        const t = setTimeout(() => {
          sock.removeAllListeners('message');
          resolve('ERR timeout');
        }, opt.timeout);
        sock.once('message', (m) => {
          clearTimeout(t);
          resolve(String(m));
        });
        sock.send(`ping ${i}`, Number(port), host);
      }),
    );
  }
  sock.close();
  console.log(JSON.stringify(out));
} else if (mode === 'hold') {
  const s = net.connect(Number(args[1]), args[0], () => console.log('open'));
  s.on('error', (e) => console.log(`ERR ${e.code}`));
  process.stdin.on('end', () => s.destroy());
  process.stdin.resume();
} else {
  console.error('usage: peer.mjs serve|get|udp|hold …');
  process.exit(2);
}
