/**
 * An operator's MQTT client for the provisioning tests: records every
 * message under a topic filter, waits for one that matches, publishes
 * desired configurations and commands (with a correlation id) and waits
 * for the answer.
 */
import { randomUUID } from 'node:crypto';
import { connectAsync } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';

export interface Seen {
  topic: string;
  text: string;
  retain: boolean;
  at: number;
}

export class MqttProbe {
  readonly seen: Seen[] = [];
  readonly #client: MqttClient;
  #waiters: Array<{ match: (m: Seen) => boolean; resolve: (m: Seen) => void }> = [];

  private constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', (topic, payload, packet) => {
      const message = { topic, text: payload.toString('utf8'), retain: packet.retain, at: Date.now() };
      this.seen.push(message);
      for (const w of [...this.#waiters]) {
        if (w.match(message)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(message);
        }
      }
    });
  }

  static async connect(url: string, filter: string, options: IClientOptions = {}): Promise<MqttProbe> {
    const client = await connectAsync(url, { clientId: `probe-${randomUUID().slice(0, 8)}`, reconnectPeriod: 300, protocolVersion: 4, ...options });
    const probe = new MqttProbe(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return probe;
  }

  /** What a new subscriber to `topic` gets as the retained message (or undefined within timeoutMs). */
  static async retained(url: string, topic: string, options: IClientOptions = {}, timeoutMs = 2000): Promise<Seen | undefined> {
    const fresh = await MqttProbe.connect(url, topic, options);
    try {
      return await fresh.waitFor((m) => m.topic === topic && m.retain, timeoutMs, `a retained message on ${topic}`);
    } catch {
      return undefined;
    } finally {
      await fresh.close();
    }
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** The first message (seen already, or to come) matching. */
  waitFor(match: (m: Seen) => boolean, timeoutMs = 10_000, what = 'an MQTT message'): Promise<Seen> {
    const seen = this.seen.find(match);
    if (seen) return Promise.resolve(seen);
    return this.next(match, timeoutMs, what);
  }

  /** The next message from now on matching. */
  next(match: (m: Seen) => boolean, timeoutMs = 10_000, what = 'an MQTT message'): Promise<Seen> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ${what} within ${timeoutMs} ms; last seen: ${this.seen.slice(-5).map((m) => `${m.topic} ${m.text.slice(0, 200)}`).join(' | ')}`));
      }, timeoutMs);
      const done = (m: Seen): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ match, resolve: done });
    });
  }

  async publish(topic: string, payload: string, retain = false): Promise<void> {
    await this.#client.publishAsync(topic, payload, { qos: 1, retain });
  }

  /** Send `cmd/<name>` with a fresh correlation id and return the parsed response carrying that id. */
  async command(base: string, name: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<{ id: string; ok: boolean; result?: unknown; error?: { code: string; message: string } }> {
    const id = randomUUID();
    const answer = this.next((m) => m.topic === `${base}/cmd/${name}/response` && (JSON.parse(m.text) as { id: unknown }).id === id, timeoutMs, `response to ${name} ${id}`);
    await this.publish(`${base}/cmd/${name}`, JSON.stringify({ id, args }));
    return JSON.parse((await answer).text) as { id: string; ok: boolean };
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true);
  }
}
