import { connect } from 'node:net';
import type { Socket } from 'node:net';

/** A bare socket client that writes raw lines and reads the server's JSON answers one by one. */
export class RawClient {
  readonly socket: Socket;
  #buffer = '';
  #answers: Array<Record<string, unknown>> = [];
  #waiters: Array<(answer: Record<string, unknown>) => void> = [];
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf('\n')) !== -1) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        const answer = JSON.parse(line) as Record<string, unknown>;
        const waiter = this.#waiters.shift();
        if (waiter) waiter(answer);
        else this.#answers.push(answer);
      }
    });
    // Writes after the server hung up fail with EPIPE/ECONNRESET: expected in the tests that provoke it.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next answer line, parsed. */
  next(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const ready = this.#answers.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
  }

  /** Send one request line and wait for the next answer. */
  async request(request: unknown): Promise<Record<string, unknown>> {
    this.send(`${JSON.stringify(request)}\n`);
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}
