// How the nftables backend's transactions reach the kernel (issue 6: one rule
// model, two transports). "netlink" (the default) sends one nf_tables batch
// through podwire's netlink layer: no child process, no read-back. "nft"
// writes the same transaction as an `nft -f -` script (text.ts) and runs nft
// inside the backend's namespace: slower, but the text is what an operator
// reads, and it is the oracle the netlink encoding is tested against.
// RecordingTransport only collects the text (`podwire proxy --dry-run`).
import { NftConnection, NftError, type Transaction } from '../../netlink/nftables/index.js';
import { renderTransaction, SetCatalog } from '../../netlink/nftables/text.js';
import { runIn } from '../program.js';

export interface NftTransport {
  readonly kind: 'netlink' | 'nft' | 'record';
  /** Applies the transaction atomically (all of it or nothing), or throws naming the reason. */
  commit(tx: Transaction): void | Promise<void>;
  /** Releases what the transport holds open (the netlink socket). */
  close?(): void;
}

export type TransportKind = 'netlink' | 'nft';

/**
 * One socket for the transport's life: closing a socket after a batch that
 * deleted anything waits for the kernel's RCU work (5-35 ms), most of a
 * one-endpoint change. A failure other than the kernel refusing the batch
 * (NftError) drops the socket; the next commit opens a new one.
 */
export class NetlinkTransport implements NftTransport {
  readonly kind = 'netlink' as const;
  private conn: NftConnection | null = null;

  constructor(private readonly netnsPath?: string) {}

  commit(tx: Transaction): void {
    this.conn ??= NftConnection.open(this.netnsPath);
    try {
      this.conn.commit(tx);
    } catch (e) {
      if (!(e instanceof NftError)) this.close();
      throw e;
    }
  }

  close(): void {
    this.conn?.close();
    this.conn = null;
  }
}

export class NftCommandError extends Error {
  constructor(
    readonly stderr: string,
    readonly exitCode: number,
  ) {
    super(`nft -f - failed (exit ${exitCode}); nothing was applied: ${stderr.trim()}`);
    this.name = 'NftCommandError';
  }
}

/** `nft -f -` (inside `nsenter --net=PATH` when a namespace is given), the script on stdin. */
export class NftTextTransport implements NftTransport {
  readonly kind = 'nft' as const;
  /** Set definitions of what this transport applied: partial syncs name sets a full sync added. */
  private readonly catalog = new SetCatalog();

  constructor(
    private readonly netnsPath?: string,
    private readonly program = 'nft',
  ) {}

  async commit(tx: Transaction): Promise<void> {
    if (tx.size === 0) return;
    const { lines, changes } = renderTransaction(tx, this.catalog);
    const r = await runIn(this.netnsPath, [this.program, '-f', '-'], chunks(lines));
    if (r.code !== 0) throw new NftCommandError(r.stderr, r.code);
    this.catalog.adopt(changes);
  }
}

/** Lines joined into pieces of about 1 MiB: few pipe writes, never one huge string. */
function chunks(lines: readonly string[]): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let size = 0;
  for (const l of lines) {
    cur.push(l);
    size += l.length;
    if (size >= 1 << 20) {
      out.push(cur.join(''));
      cur = [];
      size = 0;
    }
  }
  if (cur.length) out.push(cur.join(''));
  return out;
}

/** Collects every transaction as script text and touches nothing. */
export class RecordingTransport implements NftTransport {
  readonly kind = 'record' as const;
  private readonly catalog = new SetCatalog();
  private readonly scripts: string[] = [];

  commit(tx: Transaction): void {
    if (tx.size === 0) return;
    const { lines, changes } = renderTransaction(tx, this.catalog);
    this.catalog.adopt(changes);
    this.scripts.push(lines.join(''));
  }

  /** The scripts recorded so far, in commit order. */
  text(): string[] {
    return [...this.scripts];
  }
}

export function createTransport(kind: TransportKind | NftTransport | undefined, netnsPath?: string): NftTransport {
  if (kind === undefined || kind === 'netlink') return new NetlinkTransport(netnsPath);
  if (kind === 'nft') return new NftTextTransport(netnsPath);
  return kind;
}
