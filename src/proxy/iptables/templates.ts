// Loads rules-templates/iptables/rules.tpl once and compiles each [section]
// into line templates, so rendering 100k lines is string concatenation only.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Vars = Readonly<Record<string, string | number>>;

interface LineTemplate {
  /** Literal text and placeholder names, alternating: text, name, text, name, …, text. */
  readonly parts: readonly string[];
}

export class Templates {
  private readonly sections = new Map<string, LineTemplate[]>();

  constructor(text: string) {
    let current: LineTemplate[] | null = null;
    for (const raw of text.split('\n')) {
      const line = raw.trimEnd();
      if (line === '' || line.startsWith('#')) continue;
      const header = /^\[([\w.]+)\]$/.exec(line);
      if (header) {
        current = [];
        this.sections.set(header[1]!, current);
        continue;
      }
      if (!current) throw new Error(`iptables template line outside a [section]: ${line}`);
      current.push({ parts: line.split(/\{\{(\w+)\}\}/) });
    }
  }

  has(section: string): boolean {
    return this.sections.has(section);
  }

  /** Appends the section's lines, filled in, to out as whole lines. Throws on an unknown section or a missing variable. */
  render(section: string, vars: Vars, out: string[]): void {
    const pieces: string[] = [];
    const n = this.append(section, vars, pieces);
    const text = pieces.join('');
    const lines = text.split('\n');
    for (let i = 0; i < n; i++) out.push(lines[i]!);
  }

  /**
   * Appends the section's lines, filled in and each ending in '\n', to out as pieces: the caller joins
   * everything once (one flat string per block, no per-line strings). Returns the number of lines.
   */
  append(section: string, vars: Vars, out: string[]): number {
    const lines = this.sections.get(section);
    if (!lines) throw new Error(`iptables template has no section [${section}]`);
    for (const { parts } of lines) {
      for (let i = 0; i < parts.length; i++) {
        if (i % 2 === 0) out.push(parts[i]!);
        else {
          const v = vars[parts[i]!];
          if (v === undefined) throw new Error(`iptables template [${section}] needs {{${parts[i]}}}`);
          out.push(typeof v === 'string' ? v : String(v));
        }
      }
      out.push('\n');
    }
    return lines.length;
  }
}

/** Finds rules-templates/ above this module (src/proxy/iptables in the repo, dist/ when bundled) or the program. */
function templatePath(): string {
  const starts = [dirname(fileURLToPath(import.meta.url)), ...(process.argv[1] ? [dirname(process.argv[1])] : [])];
  for (const start of starts) {
    let dir = start;
    for (let i = 0; i < 6; i++) {
      const p = join(dir, 'rules-templates', 'iptables', 'rules.tpl');
      if (existsSync(p)) return p;
      dir = dirname(dir);
    }
  }
  throw new Error(`rules-templates/iptables/rules.tpl not found above ${starts.join(' or ')}`);
}

let loaded: Templates | null = null;

export function iptablesTemplates(): Templates {
  loaded ??= new Templates(readFileSync(templatePath(), 'utf8'));
  return loaded;
}
