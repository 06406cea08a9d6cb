// The daemon's logger: pino, JSON lines on stderr (as kube-proxy logs to
// stderr); -v 4 and up turns on debug.
import { pino, type Logger } from 'pino';

export function createLogger(verbosity: number): Logger {
  return pino({ level: verbosity >= 4 ? 'debug' : 'info', base: { component: 'podwire' } }, pino.destination({ fd: 2, sync: true }));
}
