// Runs a helper program (iptables-restore, ipset, conntrack…) with an argument
// array, never a shell, and its input on stdin: a string, or chunks written as
// the pipe drains so a 40 MB ruleset is never one buffer.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Writes chunk after chunk, waiting for the pipe to drain, so a 40 MB ruleset is never one buffer. */
async function writeChunks(stdin: Writable, chunks: readonly string[]): Promise<void> {
  for (const c of chunks) {
    if (!stdin.write(c)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off('drain', done);
          stdin.off('close', done);
          resolve();
        };
        stdin.on('drain', done);
        stdin.on('close', done);
      });
    }
    if (stdin.destroyed) return;
  }
  stdin.end();
}

export function runProgram(argv: readonly string[], input?: string | readonly string[]): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new Error(`cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => {});
    if (typeof input !== 'object') child.stdin.end(input ?? '');
    else void writeChunks(child.stdin, input);
  });
}

/**
 * Runs argv and hands its standard output to onLine a line at a time (without the newline), as it comes:
 * iptables-save of a 10k-service nat table is ~40 MB, which need never be one string.
 */
export function runProgramLines(argv: readonly string[], onLine: (line: string) => void): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const err: Buffer[] = [];
    /** The start of a line whose end has not come yet (copied: it must not keep its chunk alive). */
    let carry: Buffer | null = null;
    let failure: unknown = null;
    child.stdout.on('data', (d: Buffer) => {
      if (failure) return;
      try {
        let at = 0;
        // Split on the newline byte (never part of a multi-byte UTF-8 character) and decode each line on its
        // own: a slice of one big decoded chunk would keep the whole chunk alive as long as any part of it
        // is kept (V8 sliced strings), and a full sync keeps 10^5 chain names.
        for (let nl = d.indexOf(10); nl >= 0; nl = d.indexOf(10, at)) {
          onLine(carry ? Buffer.concat([carry, d.subarray(at, nl)]).toString('utf8') : d.toString('utf8', at, nl));
          carry = null;
          at = nl + 1;
        }
        if (at < d.length) carry = carry ? Buffer.concat([carry, d.subarray(at)]) : Buffer.from(d.subarray(at));
      } catch (e) {
        failure = e; // the consumer's error: report it once the program is done
      }
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new Error(`cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code) => {
      if (!failure && carry && carry.length > 0) {
        try {
          onLine(carry.toString('utf8'));
        } catch (e) {
          failure = e;
        }
      }
      if (failure) return reject(failure);
      resolve({ code: code ?? 1, stderr: Buffer.concat(err).toString() });
    });
  });
}

/** runProgram inside a namespace when one is given (nsenter --net=PATH). */
export function runIn(netnsPath: string | undefined, argv: readonly string[], input?: string | readonly string[]): Promise<ProgramResult> {
  return runProgram(netnsPath ? ['nsenter', `--net=${netnsPath}`, ...argv] : argv, input);
}
