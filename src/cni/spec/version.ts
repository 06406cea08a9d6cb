// The CNI spec versions podwire speaks, and comparing them.
import { CniError, ErrorCode } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.1.0';

const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/;

function parts(v: string): [number, number, number] {
  const m = SEMVER.exec(v);
  if (!m) throw new CniError(ErrorCode.Decode, `invalid cniVersion "${v}": expected MAJOR.MINOR.PATCH`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** <0, 0, >0 like a sort comparator; CniError 6 when either is not a version. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] as number) - (pb[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** The results of 0.1.0 and 0.2.0 have `ip4`/`ip6` instead of `ips`. */
export function isLegacyResultVersion(v: string): boolean {
  return v === '0.1.0' || v === '0.2.0';
}
