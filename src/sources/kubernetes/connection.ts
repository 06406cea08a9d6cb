// How to reach one API server: its URL, the TLS material to trust it and to
// present, and a bearer token that may rotate (service-account tokens do).
import { readFileSync } from 'node:fs';

export interface ApiConnection {
  /** Base URL, e.g. https://10.96.0.1:443 (a path prefix is kept). */
  readonly server: URL;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipTLSVerify: boolean;
  /** The current bearer token, or undefined when none is configured. */
  readonly token: TokenSource;
  /** Where this came from, for error messages ("kubeconfig /x context y", "in-cluster"). */
  readonly origin: string;
}

export interface TokenSource {
  get(): string | undefined;
  /** Forget a cached token (after a 401), so the next get() reads the file again. */
  invalidate(): void;
}

export function staticToken(token: string | undefined): TokenSource {
  return { get: () => token, invalidate: () => {} };
}

/** A token read from a file and re-read every refreshMs, because projected tokens rotate. */
export function fileToken(path: string, refreshMs = 60_000, now: () => number = Date.now): TokenSource {
  let cached: string | undefined;
  let readAt = -Infinity;
  return {
    get() {
      if (cached === undefined || now() - readAt >= refreshMs) {
        try {
          cached = readFileSync(path, 'utf8').trim();
          readAt = now();
        } catch (err) {
          // Keep the last good token while the file is briefly missing during rotation.
          if (cached === undefined) throw new Error(`cannot read bearer token file ${path}: ${(err as Error).message}`);
        }
      }
      return cached;
    },
    invalidate() {
      readAt = -Infinity;
    },
  };
}
