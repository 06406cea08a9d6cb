// Generic-netlink IPVS encoding, checked against what the kernel reports
// through ipvsadm -Ln and /proc/net/ip_vs.
import { Ipvs, IPVS_SVC_F_PERSISTENT, serviceKeyString, type VirtualServer } from '../../src/netlink/ipvs.js';
import { parseProcIpvs, readKernelTable, readProcIpvs } from '../../src/proxy/ipvs/snapshot.js';
import { assert, test } from './harness.js';
import { addNs, delNs, inNs } from './sh.js';

const NS = 'pw-t-ipvs-genl';
const NS_PATH = `/run/netns/${NS}`;

function withNs(fn: (ipvs: Ipvs) => void): void {
  delNs(NS);
  const path = addNs(NS);
  // Real servers must be routable from the director's namespace.
  inNs(NS, 'ip', ['link', 'add', 'pods0', 'type', 'dummy']);
  inNs(NS, 'ip', ['addr', 'add', '10.1.0.1/24', 'dev', 'pods0']);
  inNs(NS, 'ip', ['addr', 'add', 'fd00:1::1/64', 'dev', 'pods0', 'nodad']);
  inNs(NS, 'ip', ['link', 'set', 'pods0', 'up']);
  const ipvs = Ipvs.open(path);
  try {
    fn(ipvs);
  } finally {
    ipvs.close();
    delNs(NS);
  }
}

const svc: VirtualServer = { family: 4, protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 };

test('genl: a service and its destinations round-trip through the kernel, ipvsadm and /proc', () =>
  withNs((ipvs) => {
    assert.match(ipvs.info().version, /^\d+\.\d+\.\d+$/);
    ipvs.addService(svc);
    ipvs.addService({ family: 4, protocol: 'UDP', address: '10.96.0.10', port: 53, scheduler: 'wrr', flags: IPVS_SVC_F_PERSISTENT, timeout: 10800 });
    ipvs.addDestination(svc, { address: '10.1.0.2', port: 8080, weight: 1 });
    ipvs.addDestination(svc, { address: '10.1.0.3', port: 8080, weight: 5 });
    const list = ipvs.listServices().sort((a, b) => a.port - b.port);
    assert.deepEqual(
      list.map((s) => [s.protocol, s.address, s.port, s.scheduler, s.flags, s.timeout]),
      [
        ['UDP', '10.96.0.10', 53, 'wrr', IPVS_SVC_F_PERSISTENT, 10800],
        ['TCP', '10.96.0.10', 80, 'rr', 0, 0],
      ],
    );
    const dests = ipvs.listDestinations(svc).sort((a, b) => a.address.localeCompare(b.address));
    assert.deepEqual(
      dests.map((d) => [d.address, d.port, d.weight, d.forward, d.activeConns]),
      [
        ['10.1.0.2', 8080, 1, 'masq', 0],
        ['10.1.0.3', 8080, 5, 'masq', 0],
      ],
    );
    const ln = inNs(NS, 'ipvsadm', ['-Ln']);
    assert.match(ln, /TCP {2}10\.96\.0\.10:80 rr/);
    assert.match(ln, /UDP {2}10\.96\.0\.10:53 wrr persistent 10800/);
    assert.match(ln, /-> 10\.1\.0\.3:8080 +Masq +5 /);
    const proc = inNs(NS, 'cat', ['/proc/net/ip_vs']);
    assert.match(proc, /TCP {2}0A60000A:0050 rr/);
    assert.match(proc, /-> 0A010003:1F90 +Masq +5/);

    ipvs.editDestination(svc, { address: '10.1.0.3', port: 8080, weight: 0 });
    ipvs.editService({ ...svc, scheduler: 'lc' });
    assert.match(inNs(NS, 'ipvsadm', ['-Ln', '-t', '10.96.0.10:80']), /10\.96\.0\.10:80 lc[\s\S]*10\.1\.0\.3:8080 +Masq +0 /);
    ipvs.deleteDestination(svc, { address: '10.1.0.2', port: 8080 });
    assert.deepEqual(ipvs.listDestinations(svc).map((d) => d.address), ['10.1.0.3']);
    assert.equal(ipvs.getService({ ...svc, port: 81 }), null);
    assert.equal(ipvs.getService(svc)?.scheduler, 'lc');
    ipvs.deleteService(svc);
    assert.deepEqual(ipvs.listServices().map((s) => s.port), [53]);
    ipvs.flush();
    assert.deepEqual(ipvs.listServices(), []);
  }));

test('genl: IPv6 services and destinations', () =>
  withNs((ipvs) => {
    const v6: VirtualServer = { family: 6, protocol: 'TCP', address: 'fd00:96::a', port: 443, scheduler: 'sh', flags: IPVS_SVC_F_PERSISTENT, timeout: 300 };
    ipvs.addService(v6);
    ipvs.addDestination(v6, { address: 'fd00:1::2', port: 8443, weight: 1 });
    const [s] = ipvs.listServices();
    assert.equal(s?.address, 'fd00:96::a');
    assert.equal(s?.netmask, 128);
    assert.equal(ipvs.listDestinations(v6)[0]?.address, 'fd00:1::2');
    assert.match(inNs(NS, 'ipvsadm', ['-Ln']), /TCP {2}\[fd00:96::a\]:443 sh persistent 300[\s\S]*-> \[fd00:1::2\]:8443/);
  }));

test('genl: errors name the change and the reason', () =>
  withNs((ipvs) => {
    ipvs.addService(svc);
    assert.throws(() => ipvs.addService(svc), /IPVS add service TCP\/10\.96\.0\.10:80 \(scheduler rr\) failed: EEXIST/);
    assert.throws(() => ipvs.addService({ ...svc, port: 81, scheduler: 'nosuch' }), /add service TCP\/10\.96\.0\.10:81 \(scheduler nosuch\) failed: ENOENT/);
    const failed = ipvs.applyAll([
      { op: 'add-dest', service: svc, dest: { address: '10.1.0.2', port: 1, weight: 1 } },
      { op: 'add-dest', service: svc, dest: { address: '10.1.0.2', port: 1, weight: 1 } },
      { op: 'add-dest', service: svc, dest: { address: '10.1.0.4', port: 1, weight: 1 } },
    ]);
    assert.deepEqual(failed.map((f) => f.error.code), ['EEXIST']);
    assert.equal(ipvs.listDestinations(svc).length, 2);
  }));

test('genl: global timeouts set and read back', () =>
  withNs((ipvs) => {
    ipvs.setTimeouts({ tcp: 900, tcpFin: 120, udp: 300 });
    assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpFin: 120, udp: 300 });
    assert.match(inNs(NS, 'ipvsadm', ['-L', '--timeout']), /Timeout \(tcp tcpfin udp\): 900 120 300/);
  }));

test('genl: one read of /proc/net/ip_vs gives the real servers netlink lists, per virtual server', () =>
  withNs((ipvs) => {
    const v6: VirtualServer = { family: 6, protocol: 'UDP', address: 'fd00:96::35', port: 53, scheduler: 'rr', flags: 0, timeout: 0 };
    const sctp: VirtualServer = { ...svc, protocol: 'SCTP', port: 9 };
    for (const s of [svc, v6, sctp]) ipvs.addService(s);
    ipvs.addDestination(svc, { address: '10.1.0.2', port: 8080, weight: 1 });
    ipvs.addDestination(svc, { address: '10.1.0.3', port: 8081, weight: 9, forward: 'route' });
    ipvs.addDestination(v6, { address: 'fd00:1::2', port: 5353, weight: 2 });
    const proc = parseProcIpvs(readProcIpvs(NS_PATH));
    for (const s of [svc, v6, sctp]) {
      const fromNetlink = ipvs.listDestinations(s).map((d) => ({ ...d, upperThreshold: 0, lowerThreshold: 0, persistConns: 0 }));
      assert.deepEqual(proc.get(serviceKeyString(s)), fromNetlink, serviceKeyString(s));
    }
    const table = readKernelTable(ipvs, NS_PATH, 4, () => false);
    assert.deepEqual([...table.keys()].sort(), ['SCTP/10.96.0.10:9', 'TCP/10.96.0.10:80']);
    assert.equal(table.get('TCP/10.96.0.10:80')?.service.scheduler, 'rr');
  }));
