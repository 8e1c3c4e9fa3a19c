/**
 * MQTT brokers on the LAN over mDNS / DNS-SD (`_mqtt._tcp`, the service
 * type Mosquitto's Avahi examples and Home Assistant use): a phone with no
 * provisioning.mqtt.url finds one, and a box running the embedded broker
 * announces it. Errors (no multicast route, port 5353 in use) are logged,
 * never thrown: the phone runs on without provisioning.
 */
import { isIPv4 } from 'node:net';
import { Bonjour } from 'bonjour-service';
import type { Browser, Service } from 'bonjour-service';
import { errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';

export const MQTT_SERVICE_TYPE = 'mqtt';

export class BrokerDiscovery {
  readonly #log: Logger;
  #bonjour: Bonjour | undefined;
  #browser: Browser | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  #mdns(): Bonjour {
    this.#bonjour ??= new Bonjour({}, (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'mDNS error'));
    return this.#bonjour;
  }

  announce(name: string, port: number): void {
    try {
      const service = this.#mdns().publish({ name: name.slice(0, 63), type: MQTT_SERVICE_TYPE, protocol: 'tcp', port, disableIPv6: true, probe: false });
      service.on('error', (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'mDNS announcement of the broker failed'));
      this.#log.info({ type: '_mqtt._tcp', port }, 'announcing the embedded MQTT broker on mDNS');
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'cannot announce the broker on mDNS');
    }
  }

  /** The first broker announced on the LAN, as an mqtt:// URL; undefined after `timeoutMs` or when stopped. */
  find(timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (url: string | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#browser?.stop();
        this.#browser = undefined;
        resolve(url);
      };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.#browser = this.#mdns().find({ type: MQTT_SERVICE_TYPE, protocol: 'tcp' }, (service: Service) => {
          const host = service.addresses?.find((a) => isIPv4(a)) ?? service.referer?.address;
          if (host && Number.isInteger(service.port) && service.port > 0 && service.port < 65536) finish(`mqtt://${host}:${service.port}`);
        });
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'cannot browse mDNS for an MQTT broker');
        finish(undefined);
      }
    });
  }

  async stop(): Promise<void> {
    this.#browser?.stop();
    this.#browser = undefined;
    const mdns = this.#bonjour;
    this.#bonjour = undefined;
    if (!mdns) return;
    await new Promise<void>((resolve) => mdns.unpublishAll(() => resolve()));
    await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
  }
}
