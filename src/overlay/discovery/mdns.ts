import { isIPv4 } from 'node:net';
import { Bonjour } from 'bonjour-service';
import type { Browser, Service } from 'bonjour-service';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../system/logging.js';
import { formatHostPort } from '../../util/host-port.js';

/**
 * LAN discovery over mDNS / DNS-SD (RFC 6762, RFC 6763) with
 * bonjour-service: supernodes announce `_partyline._tcp`, a login server
 * running on the box announces `_partyline-login._tcp`; a phone with an
 * empty host cache and no bootstrap list browses for them.
 *
 * TXT keys: `v` (1), `net` (network name: other networks are ignored),
 * `key` (the supernode's Noise static key, or the login server's Ed25519
 * key, base64). What mDNS says is a hint like any host-cache entry: the
 * Noise handshake proves the supernode's key, and a login server is only
 * used when its key is the one configured as the trust anchor.
 */

export const SUPERNODE_SERVICE = 'partyline';
export const LOGIN_SERVICE = 'partyline-login';

export type AnnouncedRole = 'supernode' | 'login';

export interface Announcement {
  role: AnnouncedRole;
  network: string;
  port: number;
  /** base64 key (Noise static key for supernodes, Ed25519 for the login server). */
  key: string;
  /** Instance name shown in service browsers (node.name or the device id). */
  name: string;
}

export interface Discovered {
  role: AnnouncedRole;
  /** "host:port" from the service's A record (or the responder's address). */
  address: string;
  key: string;
  name: string;
}

const serviceType = (role: AnnouncedRole): string => (role === 'supernode' ? SUPERNODE_SERVICE : LOGIN_SERVICE);

/**
 * The bonjour-service instance behind an announcer or a browser, made at
 * first use: publishing and browsing log their errors (no multicast route,
 * port 5353 in use) instead of throwing, and stop() is bounded — goodbye
 * packets (TTL 0) so browsers forget the services at once, then the socket.
 */
export class MdnsResponder {
  readonly #log: Logger;
  #bonjour: Bonjour | undefined;
  #browsers = new Set<Browser>();

  constructor(log: Logger) {
    this.#log = log;
  }

  #instance(): Bonjour {
    this.#bonjour ??= new Bonjour({}, (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'mDNS error'));
    return this.#bonjour;
  }

  /** Announce `_<type>._tcp`; true when published (failures are logged). */
  publish(config: { name: string; type: string; port: number; host?: string; txt?: Record<string, string> }): boolean {
    try {
      const service = this.#instance().publish({ ...config, name: config.name.slice(0, 63), protocol: 'tcp', disableIPv6: true, probe: false });
      service.on('error', (err: unknown) => this.#log.warn({ err: errorMessage(err), type: `_${config.type}._tcp` }, 'mDNS announcement failed'));
      return true;
    } catch (err) {
      this.#log.warn({ err: errorMessage(err), type: `_${config.type}._tcp` }, 'cannot announce on mDNS');
      return false;
    }
  }

  /** Browse `_<type>._tcp`: `onService` for every service that comes up or changes; stop with the returned function. */
  browse(type: string, onService: (service: Service) => void): () => void {
    try {
      const browser = this.#instance().find({ type, protocol: 'tcp' });
      browser.on('up', onService);
      browser.on('txt-update', onService);
      browser.on('srv-update', onService);
      this.#browsers.add(browser);
      return () => {
        browser.stop();
        this.#browsers.delete(browser);
      };
    } catch (err) {
      this.#log.warn({ err: errorMessage(err), type: `_${type}._tcp` }, 'cannot browse mDNS');
      return () => undefined;
    }
  }

  async stop(): Promise<void> {
    for (const browser of this.#browsers) browser.stop();
    this.#browsers.clear();
    const bonjour = this.#bonjour;
    this.#bonjour = undefined;
    if (!bonjour) return;
    await within(1000, (done) => bonjour.unpublishAll(done));
    await within(1000, (done) => bonjour.destroy(done));
  }
}

/** Where a discovered service is: its first IPv4 address (else the responder's), and a valid port. */
export function serviceHostPort(service: Service): { host: string; port: number } | undefined {
  const host = service.addresses?.find((a) => isIPv4(a)) ?? service.referer?.address;
  if (!host || !Number.isInteger(service.port) || service.port < 1 || service.port > 65535) return undefined;
  return { host, port: service.port };
}

function within(ms: number, run: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    run(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Partyline's services on the LAN: announce supernodes and login servers, browse for them. */
export class MdnsDiscovery {
  readonly #log: Logger;
  readonly #network: string;
  readonly #responder: MdnsResponder;

  constructor(options: { log: Logger; network: string }) {
    this.#log = options.log;
    this.#network = options.network;
    this.#responder = new MdnsResponder(options.log);
  }

  announce(a: Announcement): void {
    const host = `pl-${a.key.replace(/[^A-Za-z0-9]/g, '').slice(0, 12).toLowerCase()}.local`;
    const published = this.#responder.publish({ name: a.name, type: serviceType(a.role), port: a.port, host, txt: { v: '1', net: a.network, key: a.key } });
    if (published) this.#log.info({ type: `_${serviceType(a.role)}._tcp`, port: a.port, name: a.name }, 'announcing on mDNS');
  }

  /** Browse continuously; `onFound` for every service of this network (again when it changes). */
  browse(role: AnnouncedRole, onFound: (found: Discovered) => void): void {
    this.#responder.browse(serviceType(role), (service) => {
      const found = this.#parse(role, service);
      if (found) onFound(found);
    });
    this.#log.info({ type: `_${serviceType(role)}._tcp` }, 'browsing mDNS');
  }

  #parse(role: AnnouncedRole, service: Service): Discovered | undefined {
    const txt = (service.txt ?? {}) as Record<string, unknown>;
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined);
    const network = text(txt.net);
    const key = text(txt.key);
    if (network !== this.#network) {
      this.#log.debug({ name: service.name, network }, 'mDNS: a service of another network, ignored');
      return undefined;
    }
    if (key === undefined || !/^[A-Za-z0-9+/]{43}=$/.test(key)) {
      this.#log.debug({ name: service.name }, 'mDNS: a service without a valid key, ignored');
      return undefined;
    }
    const at = serviceHostPort(service);
    return at ? { role, address: formatHostPort(at), key, name: service.name } : undefined;
  }

  stop(): Promise<void> {
    return this.#responder.stop();
  }
}
