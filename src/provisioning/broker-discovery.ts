/**
 * MQTT brokers on the LAN over mDNS / DNS-SD (`_mqtt._tcp`, the service
 * type Mosquitto's Avahi examples and Home Assistant use): a phone with no
 * provisioning.mqtt.url finds one, and a box running the embedded broker
 * announces it. Errors (no multicast route, port 5353 in use) are logged,
 * never thrown: the phone runs on without provisioning.
 */
import { MdnsResponder, serviceHostPort } from '../overlay/discovery/mdns.js';
import type { Logger } from '../system/logging.js';

export const MQTT_SERVICE_TYPE = 'mqtt';

export class BrokerDiscovery {
  readonly #log: Logger;
  readonly #mdns: MdnsResponder;

  constructor(log: Logger) {
    this.#log = log;
    this.#mdns = new MdnsResponder(log);
  }

  announce(name: string, port: number): void {
    if (this.#mdns.publish({ name, type: MQTT_SERVICE_TYPE, port })) this.#log.info({ type: '_mqtt._tcp', port }, 'announcing the embedded MQTT broker on mDNS');
  }

  /** The first broker announced on the LAN, as an mqtt:// URL; undefined after `timeoutMs` or when stopped. */
  find(timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    return new Promise((resolve) => {
      let done = false;
      let stopBrowsing = (): void => undefined;
      const finish = (url: string | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stopBrowsing();
        resolve(url);
      };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      stopBrowsing = this.#mdns.browse(MQTT_SERVICE_TYPE, (service) => {
        const at = serviceHostPort(service);
        if (at) finish(`mqtt://${at.host}:${at.port}`);
      });
      if (done) stopBrowsing();
    });
  }

  stop(): Promise<void> {
    return this.#mdns.stop();
  }
}
