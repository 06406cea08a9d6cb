// What a listener forwards to. A listener holds a Route and reads it on each
// new connection or session, so a sync can swap endpoints under a live socket.
import type { Logger } from '../core/proxier.js';
import type { Balancer } from './balancer.js';

export interface Route {
  /** The service port, for logs. */
  readonly name: string;
  readonly balancer: Balancer;
  /** Load-balancer source ranges; null: every client is allowed. */
  readonly allow: ((clientIP: string) => boolean) | null;
}

/** What every listener (TCP or UDP) offers the backend. */
export interface Listener {
  readonly key: string;
  route: Route;
  /** Binds the socket; rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL…). */
  listen(): Promise<void>;
  /** Stops taking new clients. */
  close(): void;
  /** Called after the route's endpoints changed (UDP ends sessions whose endpoint left). */
  endpointsChanged(): void;
}

export type { Logger };
