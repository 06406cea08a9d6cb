import { describe, expect, it } from 'vitest';
import { parseResolvConf } from '../../src/ipam/resolv.js';

describe('resolvConf', () => {
  it('maps nameserver, domain, search and options into the result dns', () => {
    const text = '# comment\nnameserver 10.96.0.10\nnameserver fd00::a ; trailing\ndomain cluster.local\nsearch a.svc b.svc\noptions ndots:5 edns0\n';
    expect(parseResolvConf(text)).toEqual({
      nameservers: ['10.96.0.10', 'fd00::a'],
      domain: 'cluster.local',
      search: ['a.svc', 'b.svc'],
      options: ['ndots:5', 'edns0'],
    });
    expect(parseResolvConf('')).toEqual({});
  });
});
