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

/** One mDNS responder/browser per node: announce services and browse. */
export class MdnsDiscovery {
  readonly #log: Logger;
  readonly #network: string;
  #bonjour: Bonjour | undefined;
  #browsers: Browser[] = [];
  #published: Service[] = [];

  constructor(options: { log: Logger; network: string }) {
    this.#log = options.log;
    this.#network = options.network;
  }

  #instance(): Bonjour {
    this.#bonjour ??= new Bonjour({}, (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'mDNS error'));
    return this.#bonjour;
  }

  /** Announce a service; errors (no multicast route, port 5353 taken) are logged, never thrown. */
  announce(a: Announcement): void {
    try {
      const host = `pl-${a.key.replace(/[^A-Za-z0-9]/g, '').slice(0, 12).toLowerCase()}.local`;
      const service = this.#instance().publish({
        name: a.name.slice(0, 63),
        type: serviceType(a.role),
        protocol: 'tcp',
        port: a.port,
        host,
        txt: { v: '1', net: a.network, key: a.key },
        disableIPv6: true,
        probe: false,
      });
      service.on('error', (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'mDNS announcement failed'));
      this.#published.push(service);
      this.#log.info({ type: `_${serviceType(a.role)}._tcp`, port: a.port, name: a.name }, 'announcing on mDNS');
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'cannot announce on mDNS');
    }
  }

  /** Browse continuously; `onFound` for every service of this network (again when it changes). */
  browse(role: AnnouncedRole, onFound: (found: Discovered) => void): void {
    try {
      const browser = this.#instance().find({ type: serviceType(role), protocol: 'tcp' });
      const take = (service: Service): void => {
        const found = this.#parse(role, service);
        if (found) onFound(found);
      };
      browser.on('up', take);
      browser.on('txt-update', take);
      browser.on('srv-update', take);
      this.#browsers.push(browser);
      this.#log.info({ type: `_${serviceType(role)}._tcp` }, 'browsing mDNS');
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'cannot browse mDNS');
    }
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
    const host = service.addresses?.find((a) => isIPv4(a)) ?? service.referer?.address;
    if (!host || !Number.isInteger(service.port) || service.port < 1 || service.port > 65535) return undefined;
    return { role, address: formatHostPort({ host, port: service.port }), key, name: service.name };
  }

  async stop(): Promise<void> {
    for (const browser of this.#browsers) browser.stop();
    this.#browsers = [];
    const bonjour = this.#bonjour;
    this.#bonjour = undefined;
    if (!bonjour) return;
    // Goodbye packets (TTL 0) so browsers forget this node at once, then close the socket.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      bonjour.unpublishAll(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.#published = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      bonjour.destroy(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
