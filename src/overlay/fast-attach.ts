import type { Identity } from '../crypto/identity.js';
import type { Credential } from '../crypto/credential.js';
import { PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { dialLink } from '../link/transport.js';
import type { PeerLink } from '../link/transport.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort, parseHostPort } from '../util/host-port.js';
import type { HostCacheEntry } from './host-cache.js';

export interface ConnectCandidate {
  /** The host-cache address (`host:port` of the primary port). */
  address: string;
  /** Every endpoint to try for it: the primary port, then 443/80 and other extra ports. */
  endpoints: Array<{ host: string; port: number }>;
}

export interface RaceResult extends PeerLink {
  candidate: ConnectCandidate;
  endpoint: string;
  /** Time from starting this attempt to the completed handshake. */
  handshakeMs: number;
}

export interface RaceOptions {
  identity: Identity;
  network: string;
  log: Logger;
  /** The credential to show in the handshake payload, if any. */
  credential?: () => Credential | undefined;
  /** Attempts in flight at once. */
  parallel?: number;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called for every attempt that fails (to mark the host cache). */
  onFailure?: (candidate: ConnectCandidate, err: unknown) => void;
  /** Handlers to register on the winning link before it starts receiving. */
  setup?: (link: Link) => void;
}

export function candidatesFrom(entries: readonly HostCacheEntry[]): ConnectCandidate[] {
  return entries.map((entry) => {
    const { host, port } = parseHostPort(entry.address);
    return { address: entry.address, endpoints: [{ host, port }, ...entry.altPorts.map((p) => ({ host, port: p }))] };
  });
}

/**
 * Connect to the first supernode that completes a Noise handshake, trying
 * several candidates at once (DESIGN.md "Joining the network", step 2).
 * A dead entry costs the time to be refused, not a sequential timeout;
 * the losers are aborted and any link they completed meanwhile is closed.
 */
export function raceConnect(candidates: readonly ConnectCandidate[], options: RaceOptions): Promise<RaceResult> {
  const attempts = candidates.flatMap((candidate) => candidate.endpoints.map((endpoint) => ({ candidate, endpoint })));
  const parallel = Math.max(1, options.parallel ?? 6);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  return new Promise<RaceResult>((resolve, reject) => {
    let next = 0;
    let inFlight = 0;
    const remaining = new Map<ConnectCandidate, number>(candidates.map((c) => [c, c.endpoints.length]));
    let done = false;
    const errors: string[] = [];

    const finish = (): void => {
      options.signal?.removeEventListener('abort', onAbort);
      controller.abort();
    };

    const launch = (): void => {
      while (!done && inFlight < parallel && next < attempts.length) {
        const { candidate, endpoint } = attempts[next++]!;
        inFlight++;
        const started = performance.now();
        dialLink({
          identity: options.identity,
          network: options.network,
          role: 'node',
          log: options.log,
          host: endpoint.host,
          port: endpoint.port,
          pattern: 'XX',
          connectTimeoutMs: options.connectTimeoutMs ?? 3000,
          handshakeTimeoutMs: options.handshakeTimeoutMs ?? 3000,
          signal: controller.signal,
          ...(options.credential ? { credential: options.credential } : {}),
          ...(options.setup ? { setup: options.setup } : {}),
        }).then(
          (result) => {
            inFlight--;
            if (done) {
              result.link.close();
              return;
            }
            done = true;
            finish();
            resolve({ ...result, candidate, endpoint: formatHostPort(endpoint), handshakeMs: performance.now() - started });
          },
          (err: unknown) => {
            inFlight--;
            if (done) return;
            if (options.signal?.aborted) {
              done = true;
              finish();
              reject(new PartylineError('ERR_ABORTED', 'connect aborted'));
              return;
            }
            errors.push(`${formatHostPort(endpoint)}: ${errorMessage(err)}`);
            // A candidate has failed once all of its endpoints have (fake extra ports cannot pile up failures).
            const left = (remaining.get(candidate) ?? 1) - 1;
            remaining.set(candidate, left);
            if (left === 0) options.onFailure?.(candidate, err);
            if (next >= attempts.length && inFlight === 0) {
              done = true;
              finish();
              reject(new PartylineError('ERR_NO_SUPERNODE', attempts.length === 0 ? 'no supernode known: the host cache is empty and network.bootstrap lists none' : `no supernode answered (${errors.slice(0, 5).join('; ')}${errors.length > 5 ? '; …' : ''})`));
            } else {
              launch();
            }
          },
        );
      }
      if (!done && attempts.length === 0) {
        done = true;
        finish();
        reject(new PartylineError('ERR_NO_SUPERNODE', 'no supernode known: the host cache is empty and network.bootstrap lists none'));
      }
    };
    if (options.signal?.aborted) {
      done = true;
      reject(new PartylineError('ERR_ABORTED', 'connect aborted'));
      return;
    }
    launch();
  });
}
