// resolv.conf → the result's `dns` (host-local's resolvConf option).
import { readFileSync } from 'node:fs';
import { CniError, ErrorCode } from '../cni/spec/errors.js';
import type { DNS } from '../cni/spec/result.js';

export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*$/, '').trim().split(/\s+/).filter(Boolean);
    const [key, ...rest] = words;
    if (key === 'nameserver' && rest[0]) (dns.nameservers ??= []).push(rest[0]);
    else if (key === 'domain' && rest[0]) dns.domain = rest[0];
    else if (key === 'search') dns.search = rest;
    else if (key === 'options') (dns.options ??= []).push(...rest);
  }
  return dns;
}

export function readResolvConf(path: string): DNS {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CniError(ErrorCode.IO, `cannot read ipam.resolvConf ${path}: ${(err as Error).message}`);
  }
}
