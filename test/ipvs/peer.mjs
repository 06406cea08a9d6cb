// Traffic helper run inside a namespace by the in-VM suite:
//   node peer.mjs serve NAME PORT      HTTP server answering NAME (prints "listening")
//   node peer.mjs get URL [URL...]     one GET per URL, prints a JSON array of bodies or "ERR <code>"
//   node peer.mjs hold HOST PORT       opens a TCP connection, prints "open", keeps it until stdin closes
import http from 'node:http';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') {
  const [name, port] = args;
  http.createServer((_req, res) => res.end(name)).listen(Number(port), '::', () => console.log('listening'));
} else if (mode === 'get') {
  const out = [];
  for (const url of args) {
    out.push(
      await new Promise((resolve) => {
        const req = http.get(url, { timeout: 3000, agent: false }, (res) => {
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
} else if (mode === 'hold') {
  const s = net.connect(Number(args[1]), args[0], () => console.log('open'));
  s.on('error', (e) => console.log(`ERR ${e.code}`));
  process.stdin.on('end', () => s.destroy());
  process.stdin.resume();
} else {
  console.error('usage: peer.mjs serve|get|hold …');
  process.exit(2);
}
