// A minimal Kubernetes API client on node:https: GET a JSON list page, and
// follow a watch stream (one JSON event per line, chunked). Only what the
// reflectors need; errors carry the HTTP status and the API's Status reason.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { ApiConnection } from './connection.js';
import { podwireVersion } from './version.js';

/** An error answer from the API server (non-2xx), with its metav1.Status fields when it sent one. */
export class ApiStatusError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    /** Seconds from Retry-After (429/503), 0 when absent. */
    readonly retryAfterSeconds = 0,
  ) {
    super(message);
    this.name = 'ApiStatusError';
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

export interface ApiClientOptions {
  /** A list page that takes longer fails (and is retried). */
  requestTimeoutMs?: number;
}

export type Query = Record<string, string | number | boolean | undefined>;

export class ApiClient {
  private readonly agent: http.Agent;
  private readonly userAgent = `podwire/${podwireVersion()}`;
  private readonly requestTimeoutMs: number;

  constructor(
    readonly conn: ApiConnection,
    opts: ApiClientOptions = {},
  ) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    const agentOpts = { keepAlive: true, ca: conn.ca, cert: conn.cert, key: conn.key, rejectUnauthorized: !conn.insecureSkipTLSVerify };
    this.agent = conn.server.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent({ keepAlive: true });
  }

  url(path: string, query: Query): URL {
    const u = new URL(this.conn.server.href);
    u.pathname = u.pathname.replace(/\/$/, '') + path;
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    return u;
  }

  private open(url: URL, signal: AbortSignal | undefined, gzip = false): Promise<http.IncomingMessage> {
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json', 'User-Agent': this.userAgent };
    // Big lists compress ~10x; the API server gzips large non-watch answers when asked (as client-go asks).
    if (gzip) headers['Accept-Encoding'] = 'gzip';
    const token = this.conn.token.get();
    if (token) headers.Authorization = `Bearer ${token}`;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: 'GET', headers, agent: this.agent, signal });
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
  }

  /** Reads a non-2xx response into an ApiStatusError. */
  private async statusError(url: URL, res: http.IncomingMessage): Promise<ApiStatusError> {
    const body = await readBody(res).catch(() => '');
    let reason = '';
    let message = body.slice(0, 300);
    try {
      const st = JSON.parse(body) as { reason?: string; message?: string };
      reason = st.reason ?? '';
      message = st.message ?? message;
    } catch {
      // not a Status object; keep the raw text
    }
    if (res.statusCode === 401) this.conn.token.invalidate();
    const retryAfter = Number(res.headers['retry-after'] ?? 0) || 0;
    return new ApiStatusError(res.statusCode ?? 0, reason, `GET ${url.pathname}${url.search} on ${this.conn.origin}: ${res.statusCode} ${reason || res.statusMessage}: ${message}`, retryAfter);
  }

  /** GET one JSON document. Throws ApiStatusError on a non-2xx answer, Error on network failures or timeout. */
  async getJson<T>(path: string, query: Query, signal?: AbortSignal): Promise<T> {
    const url = this.url(path, query);
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const res = await this.open(url, both, true);
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) throw await this.statusError(url, res);
      return JSON.parse(await readBody(res)) as T;
    } catch (err) {
      if (err instanceof ApiStatusError) throw err;
      if (timeout.aborted) throw new Error(`GET ${url.pathname} on ${this.conn.origin}: no complete answer within ${this.requestTimeoutMs} ms`);
      throw new Error(`GET ${url.pathname} on ${this.conn.origin}: ${(err as Error).message}`);
    }
  }

  /**
   * Follows a watch until the server ends it (resolves with the number of events seen), or fails: a non-2xx answer,
   * a broken connection, or no byte for idleTimeoutMs (rejects). Events are handed over one by one, in order.
   */
  async watch(path: string, query: Query, onEvent: (ev: WatchEvent) => void, opts: { idleTimeoutMs: number; signal?: AbortSignal }): Promise<number> {
    const url = this.url(path, { ...query, watch: 'true' });
    const ctl = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ctl.signal]) : ctl.signal;
    let idle: NodeJS.Timeout | undefined;
    let silent = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        silent = true;
        ctl.abort();
      }, opts.idleTimeoutMs);
    };
    arm();
    try {
      const res = await this.open(url, signal);
      if (res.statusCode !== 200) throw await this.statusError(url, res);
      arm();
      let events = 0;
      let rest = '';
      res.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        res.on('data', (chunk: string) => {
          arm();
          const text = rest + chunk;
          let start = 0;
          for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
            const line = text.slice(start, nl).trim();
            start = nl + 1;
            if (line === '') continue;
            let ev: WatchEvent;
            try {
              ev = JSON.parse(line) as WatchEvent;
            } catch {
              res.destroy();
              reject(new Error(`watch ${url.pathname} on ${this.conn.origin}: undecodable event: ${line.slice(0, 200)}`));
              return;
            }
            events++;
            try {
              onEvent(ev);
            } catch (err) {
              res.destroy();
              reject(err as Error);
              return;
            }
          }
          rest = text.slice(start);
        });
        res.on('end', () => resolve());
        res.on('aborted', () => reject(new Error('connection closed mid-stream')));
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(new Error('connection closed mid-stream'));
        });
      });
      return events;
    } catch (err) {
      if (err instanceof ApiStatusError) throw err;
      if (silent) throw new Error(`watch ${url.pathname} on ${this.conn.origin}: silent for ${opts.idleTimeoutMs} ms, reconnecting`);
      if (opts.signal?.aborted) throw err;
      throw new Error(`watch ${url.pathname} on ${this.conn.origin}: ${(err as Error).message}`);
    } finally {
      clearTimeout(idle);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The body as text; decoding chunk by chunk avoids holding one large Buffer per list page outside the heap. */
function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    let body: Readable = res;
    if (res.headers['content-encoding'] === 'gzip') {
      const gunzip = createGunzip();
      res.pipe(gunzip);
      gunzip.on('error', (err) => reject(new Error(`undecodable gzip answer: ${err.message}`)));
      body = gunzip;
    }
    body.setEncoding('utf8');
    body.on('data', (s: string) => (text += s));
    body.on('end', () => resolve(text));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed before the answer was complete')));
  });
}
