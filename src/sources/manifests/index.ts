// The manifests source: a directory of YAML/JSON files standing in for the
// API server when there is no cluster. Files may be added, changed and removed
// while the proxy runs; each rescan turns the difference into upserts and
// deletes. Bad files and objects are logged and skipped.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigSource, SourceHandler } from '../source.js';
import { parseManifest, type ManifestObject } from './parse.js';

export interface ManifestsLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

function objectKey(m: ManifestObject): string {
  return `${m.kind}/${m.obj.metadata.namespace ?? 'default'}/${m.obj.metadata.name}`;
}

export class ManifestsSource implements ConfigSource {
  private handler: SourceHandler | null = null;
  private watcher: FSWatcher | null = null;
  /** file → its objects by key */
  private readonly files = new Map<string, Map<string, ManifestObject>>();
  /** the content last delivered, by object key */
  private readonly delivered = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private rescanAgain = false;

  constructor(
    private readonly dir: string,
    private readonly nodeName: string,
    private readonly log: ManifestsLog,
  ) {}

  async start(handler: SourceHandler): Promise<void> {
    this.handler = handler;
    await this.scan();
    handler.onSynced();
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.schedule());
      this.watcher.on('error', (err) => this.log.warn({ dir: this.dir, err: String(err) }, 'watching the manifests directory failed; polling'));
    } catch (err) {
      this.log.warn({ dir: this.dir, err: String(err) }, 'cannot watch the manifests directory; polling');
    }
    // fs.watch misses changes on some filesystems and to files replaced by rename: poll too, cheaply.
    this.poll = setInterval(() => this.schedule(), 2000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
    await this.scanning;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.scanning) {
        this.rescanAgain = true;
        return;
      }
      void this.scan();
    }, 100);
  }

  private scan(): Promise<void> {
    this.scanning = this.doScan().finally(() => {
      this.scanning = null;
      if (this.rescanAgain) {
        this.rescanAgain = false;
        this.schedule();
      }
    });
    return this.scanning;
  }

  private readonly texts = new Map<string, string>();

  private async doScan(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith('.')).sort();
    } catch (err) {
      this.log.warn({ dir: this.dir, err: String(err) }, 'cannot read the manifests directory');
      return;
    }
    const present = new Set(names);
    for (const f of [...this.files.keys()]) {
      if (!present.has(f)) {
        this.files.delete(f);
        this.texts.delete(f);
        this.log.info({ file: join(this.dir, f) }, 'manifest removed');
      }
    }
    for (const name of names) {
      let text: string;
      try {
        text = await readFile(join(this.dir, name), 'utf8');
      } catch {
        continue; // removed between readdir and read: the next scan sees it
      }
      if (this.texts.get(name) === text) continue;
      this.texts.set(name, text);
      const parsed = parseManifest(join(this.dir, name), text);
      for (const p of parsed.problems) this.log.warn({ reason: p }, 'skipping part of a manifest');
      const objs = new Map<string, ManifestObject>();
      for (const o of parsed.objects) {
        if (o.kind === 'Node' && o.obj.metadata.name !== this.nodeName) continue;
        objs.set(objectKey(o), o);
      }
      this.files.set(name, objs);
    }
    this.deliver();
  }

  /** Compares the union of all files with what was delivered and sends the difference. */
  private deliver(): void {
    const h = this.handler!;
    const now = new Map<string, ManifestObject>();
    for (const objs of this.files.values()) for (const [k, o] of objs) now.set(k, o);
    for (const [key, text] of [...this.delivered]) {
      if (now.has(key)) continue;
      this.delivered.delete(key);
      const obj = JSON.parse(text) as ManifestObject;
      if (obj.kind === 'Service') h.onServiceDelete(obj.obj);
      else if (obj.kind === 'EndpointSlice') h.onEndpointSliceDelete(obj.obj);
      else h.onNodeDelete(obj.obj);
    }
    // Services first, so a slice never arrives before its service in one scan.
    const order = { Node: 0, Service: 1, EndpointSlice: 2 } as const;
    for (const [key, o] of [...now].sort((a, b) => order[a[1].kind] - order[b[1].kind])) {
      const text = JSON.stringify(o);
      if (this.delivered.get(key) === text) continue;
      this.delivered.set(key, text);
      if (o.kind === 'Service') h.onServiceUpsert(o.obj);
      else if (o.kind === 'EndpointSlice') h.onEndpointSliceUpsert(o.obj);
      else h.onNodeUpsert(o.obj);
    }
  }
}
