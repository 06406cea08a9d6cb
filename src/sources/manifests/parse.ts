// Reads one manifest file: YAML (multi-document) or JSON, `kind: List`
// flattened, and keeps the kinds the proxy uses. Every problem is reported
// with its place, and the rest of the file still counts.
import { parseAllDocuments } from 'yaml';
import type { EndpointSlice, Node, Service } from '../../api/types.js';

export type ManifestObject =
  | { kind: 'Service'; obj: Service }
  | { kind: 'EndpointSlice'; obj: EndpointSlice }
  | { kind: 'Node'; obj: Node };

export interface ParsedFile {
  objects: ManifestObject[];
  problems: string[];
}

const KINDS: Record<string, string> = {
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Node: 'v1',
};

function collect(doc: unknown, where: string, out: ParsedFile): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    out.problems.push(`${where}: not an object`);
    return;
  }
  const o = doc as Record<string, unknown>;
  if (o.kind === 'List' || (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items))) {
    const items = Array.isArray(o.items) ? o.items : [];
    items.forEach((item, i) => collect(item, `${where} items[${i}]`, out));
    return;
  }
  const kind = o.kind;
  if (typeof kind !== 'string') {
    out.problems.push(`${where}: no kind`);
    return;
  }
  const want = KINDS[kind];
  if (!want) return; // other kinds (Deployments, ConfigMaps…) are not the proxy's business
  if (o.apiVersion !== undefined && o.apiVersion !== want) {
    out.problems.push(`${where}: ${kind} with apiVersion ${String(o.apiVersion)} (want ${want})`);
    return;
  }
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (!meta || typeof meta.name !== 'string' || !meta.name) {
    out.problems.push(`${where}: ${kind} without metadata.name`);
    return;
  }
  if (kind === 'Service' && (typeof o.spec !== 'object' || o.spec === null)) {
    out.problems.push(`${where}: Service ${meta.name} has no spec`);
    return;
  }
  if (kind === 'EndpointSlice' && !Array.isArray(o.endpoints)) o.endpoints = [];
  out.objects.push({ kind, obj: o } as unknown as ManifestObject);
}

export function parseManifest(file: string, text: string): ParsedFile {
  const out: ParsedFile = { objects: [], problems: [] };
  if (file.endsWith('.json')) {
    try {
      collect(JSON.parse(text), file, out);
    } catch (e) {
      out.problems.push(`${file}: ${(e as Error).message}`);
    }
    return out;
  }
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((d, i) => {
    const where = list.length > 1 ? `${file} (document ${i + 1})` : file;
    if (d.errors.length) {
      out.problems.push(`${where}: ${d.errors[0]!.message.split('\n')[0]}`);
      return;
    }
    collect(d.toJS(), where, out);
  });
  return out;
}
