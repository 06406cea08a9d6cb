// Go's time.Duration text ("30s", "1m30s", "500ms", "1h"), as kube-proxy's
// flags and KubeProxyConfiguration use it.
const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds. Throws a clear error for anything Go would reject. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (!s || matched !== s.length) throw new Error(`invalid duration "${text}" (use Go's form, e.g. 30s, 1m, 500ms)`);
  return total;
}
