// List+watch of one resource kind, kept forever: a paginated list, then a
// watch from the list's resourceVersion (with bookmarks), a fresh list on
// 410 Gone (synthesising deletes for objects that vanished meanwhile), and
// capped exponential backoff after any other failure. Nothing is delivered
// while the server is unreachable, so the consumer keeps its last state.
import type { ObjectIdentity, ObjectMeta } from '../../api/types.js';
import { ApiStatusError, type ApiClient, type WatchEvent } from './client.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';

export interface KubeObject {
  metadata: ObjectMeta;
}

export interface ReflectorHandler<T> {
  upsert(obj: T): void;
  /** The whole object for a watch's DELETED event; only its identity for a delete synthesised by a relist. */
  delete(obj: T | ObjectIdentity): void;
  /** Once, after the first complete list was delivered. */
  synced(): void;
}

export interface ResourceSpec {
  /** For logs: "services". */
  readonly name: string;
  /** Collection path, e.g. /api/v1/services. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Applied to every object as it arrives, before it is stored or delivered (e.g. dropping managedFields). */
  readonly transform?: (obj: never) => void;
}

export interface Logger {
  info(msg: string, extra?: object): void;
  warn(msg: string, extra?: object): void;
  error(msg: string, extra?: object): void;
  debug?(msg: string, extra?: object): void;
}

export interface ReflectorTuning {
  /** Items per list page (the `limit` parameter). */
  pageSize?: number;
  backoff?: BackoffPolicy;
  /** The watch's server-side timeoutSeconds; default random in [300, 600) like client-go, so nodes spread out. */
  watchTimeoutSeconds?: () => number;
  /** A watch with no byte (no event, no bookmark) for this long is treated as dead. */
  idleTimeoutMs?: number;
  /** A watch that ends sooner than this without an event counts as a failure (no hot loop against a broken server). */
  minWatchMs?: number;
  requestTimeoutMs?: number;
}

interface ListPage<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

interface Status {
  code?: number;
  reason?: string;
  message?: string;
}

/** The server no longer has the history we asked for: list again. */
class GoneError extends Error {}

export function objectKey(meta: ObjectMeta): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

export class Reflector<T extends KubeObject> {
  /**
   * Key → resourceVersion of every object delivered: all a relist needs to find what vanished and what
   * changed. The objects themselves belong to the consumer (the core keeps them in its own compact form).
   */
  private readonly store = new Map<string, string>();
  private rv = '';
  private hasSynced = false;
  private readonly pageSize: number;
  private readonly backoff: BackoffPolicy;
  private readonly watchTimeout: () => number;
  private readonly idleTimeoutMs: number;
  private readonly minWatchMs: number;

  constructor(
    private readonly client: ApiClient,
    readonly resource: ResourceSpec,
    private readonly handler: ReflectorHandler<T>,
    private readonly log: Logger,
    tuning: ReflectorTuning = {},
  ) {
    this.pageSize = tuning.pageSize ?? 500;
    this.backoff = tuning.backoff ?? DEFAULT_BACKOFF;
    this.watchTimeout = tuning.watchTimeoutSeconds ?? (() => Math.floor(300 + Math.random() * 300));
    this.idleTimeoutMs = tuning.idleTimeoutMs ?? 150_000;
    this.minWatchMs = tuning.minWatchMs ?? 1_000;
  }

  get resourceVersion(): string {
    return this.rv;
  }

  get size(): number {
    return this.store.size;
  }

  /** Runs until signal aborts. Never gives up on errors. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      let progressed = false;
      let started = 0;
      try {
        if (needList) {
          await this.listAndReplace(signal);
          needList = false;
        }
        started = Date.now();
        let events = 0;
        const count = () => {
          events++;
          progressed = true;
        };
        const seen = await this.client.watch(
          this.resource.path,
          {
            resourceVersion: this.rv,
            allowWatchBookmarks: true,
            timeoutSeconds: this.watchTimeout(),
            labelSelector: this.resource.labelSelector,
            fieldSelector: this.resource.fieldSelector,
          },
          (ev) => {
            count();
            this.apply(ev);
          },
          { idleTimeoutMs: this.idleTimeoutMs, signal },
        );
        const lasted = Date.now() - started;
        if (lasted >= this.minWatchMs) progressed = true;
        if (seen === 0 && lasted < this.minWatchMs) throw new Error(`watch of ${this.resource.name} ended after ${lasted} ms without an event`);
        failures = 0;
        this.log.debug?.(`watch of ${this.resource.name} ended after ${lasted} ms (${events} events), resuming at ${this.rv}`);
      } catch (err) {
        if (signal.aborted) break;
        // A watch that stayed up a while before failing was healthy: start the backoff over.
        if (started > 0 && Date.now() - started >= this.minWatchMs) progressed = true;
        if (err instanceof GoneError || (err instanceof ApiStatusError && err.status === 410)) {
          this.log.info(`watch of ${this.resource.name} from resourceVersion ${this.rv} expired (410 Gone): listing again`);
          needList = true;
          if (progressed) failures = 0;
          failures++;
          // One quick relist is normal; repeated 410s back off like any other failure.
          if (failures <= 1) continue;
        } else {
          if (progressed) failures = 0;
          failures++;
        }
        const retryAfterMs = err instanceof ApiStatusError ? err.retryAfterSeconds * 1000 : 0;
        const delay = Math.max(backoffDelay(this.backoff, failures), retryAfterMs);
        this.log.warn(`${this.resource.name}: ${(err as Error).message}; retrying in ${delay} ms (keeping the last known state)`, {
          failures,
        });
        await sleep(delay, signal);
      }
    }
  }

  /** A complete (all pages) list, applied to the store as one replacement. A partial list is never applied. */
  private async listAndReplace(signal: AbortSignal): Promise<void> {
    let items: T[] = [];
    let cont = '';
    let rv = '';
    let restarts = 0;
    for (;;) {
      let page: ListPage<T>;
      try {
        page = await this.client.getJson<ListPage<T>>(
          this.resource.path,
          { limit: this.pageSize, continue: cont, labelSelector: this.resource.labelSelector, fieldSelector: this.resource.fieldSelector },
          signal,
        );
      } catch (err) {
        // The continue token outlived the server's history: start the list over (a few times, then back off).
        if (cont && err instanceof ApiStatusError && err.status === 410 && restarts < 3) {
          restarts++;
          this.log.info(`list of ${this.resource.name}: continue token expired, listing from the start`);
          items = [];
          cont = '';
          continue;
        }
        throw err;
      }
      if (page.items) {
        for (const it of page.items) {
          this.resource.transform?.(it as never);
          items.push(it);
        }
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue ?? '';
      if (!cont) break;
    }
    this.replace(items);
    this.rv = rv;
    this.log.debug?.(`listed ${items.length} ${this.resource.name} at resourceVersion ${rv}`);
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.handler.synced();
    }
  }

  private replace(items: T[]): void {
    const next = new Map<string, T>();
    for (const it of items) next.set(objectKey(it.metadata), it);
    for (const [key, rv] of this.store) if (!next.has(key)) this.handler.delete(identityOf(key, rv));
    for (const [key, obj] of next) {
      const rv = this.store.get(key);
      if (rv === undefined || rv !== obj.metadata.resourceVersion || !obj.metadata.resourceVersion) this.handler.upsert(obj);
    }
    this.store.clear();
    for (const [k, v] of next) this.store.set(k, v.metadata.resourceVersion ?? '');
  }

  private apply(ev: WatchEvent): void {
    if (ev.type === 'ERROR') {
      const st = (ev.object ?? {}) as Status;
      if (st.code === 410) throw new GoneError(st.message ?? 'Gone');
      throw new ApiStatusError(st.code ?? 0, st.reason ?? '', `watch of ${this.resource.name}: error event ${st.code} ${st.reason ?? ''}: ${st.message ?? ''}`);
    }
    const obj = ev.object as T;
    if (!obj || typeof obj !== 'object' || !obj.metadata) throw new Error(`watch of ${this.resource.name}: ${ev.type} event without an object`);
    // The resourceVersion moves only once the event is handled, so a failed handler sees it again after the re-watch.
    if (ev.type === 'BOOKMARK') {
      if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
      return;
    }
    this.resource.transform?.(obj as never);
    const key = objectKey(obj.metadata);
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.store.set(key, obj.metadata.resourceVersion ?? '');
        this.handler.upsert(obj);
        break;
      case 'DELETED':
        this.store.delete(key);
        this.handler.delete(obj);
        break;
      default:
        throw new Error(`watch of ${this.resource.name}: unknown event type ${String((ev as { type: unknown }).type)}`);
    }
    if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
  }
}

/** The identity of a stored object from its key ("namespace/name", or "name" when cluster-scoped). */
function identityOf(key: string, resourceVersion: string): ObjectIdentity {
  const slash = key.indexOf('/');
  const metadata: ObjectMeta = slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
  if (resourceVersion) metadata.resourceVersion = resourceVersion;
  return { metadata };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
