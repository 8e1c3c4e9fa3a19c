import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { PartylineError } from '../errors.js';
import type { Link, LinkHandlers } from '../link/link.js';
import type { Logger } from '../system/logging.js';
import { TunnelClose, TunnelData, TunnelOpen } from './messages.js';

/** Largest piece of tunnelled data per message (base64 grows it by a third). */
const CHUNK = 16 * 1024;

const streams = new WeakMap<Link, Map<number, TunnelStream>>();

function tunnelsOf(link: Link): Map<number, TunnelStream> {
  let map = streams.get(link);
  if (!map) {
    const created = new Map<number, TunnelStream>();
    map = created;
    streams.set(link, created);
    link.onNotice(TunnelData, (body) => created.get(body.tunnel)?.receive(Buffer.from(body.data, 'base64')));
    link.onNotice(TunnelClose, (body) => created.get(body.tunnel)?.remoteClosed());
    link.once('close', () => {
      for (const stream of created.values()) stream.destroy(new PartylineError('ERR_TUNNEL_CLOSED', 'supernode link closed'));
      created.clear();
    });
  }
  return map;
}

/**
 * The node's end of a tunnel through a supernode: a byte stream whose bytes
 * travel as `tunnel.data` messages on the supernode link. A Noise session
 * runs inside it end to end, so the supernode relays ciphertext only.
 */
export class TunnelStream extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined = undefined;
  readonly localPort: number | undefined = undefined;
  #link: Link;
  #id: number;
  #closedByPeer = false;

  constructor(link: Link, id: number) {
    super();
    this.#link = link;
    this.#id = id;
    this.remoteAddress = `tunnel:${link.remoteAddress ?? 'supernode'}`;
  }

  receive(data: Buffer): void {
    this.push(data);
  }

  remoteClosed(): void {
    this.#closedByPeer = true;
    this.push(null);
    this.destroy();
  }

  override _read(): void {
    /* data is pushed as it arrives */
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      for (let offset = 0; offset < chunk.length; offset += CHUNK) {
        this.#link.notify(TunnelData, { tunnel: this.#id, data: chunk.subarray(offset, offset + CHUNK).toString('base64') });
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /**
   * A tunnel has no half-close: when the side using it ends its stream (a
   * Link closing cleanly ends its socket), the tunnel is done. Destroying it
   * tells the supernode (tunnel.close) to let go of the tunnel and of its
   * connection to the login server at once, instead of after the idle time.
   */
  override _final(callback: (error?: Error | null) => void): void {
    callback();
    this.destroy();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    tunnelsOf(this.#link).delete(this.#id);
    if (!this.#closedByPeer && !this.#link.closed) this.#link.notify(TunnelClose, { tunnel: this.#id });
    callback(error);
  }
}

/** Ask the supernode on `link` for a tunnel to the login server. */
export async function openLoginTunnel(link: Link, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TunnelStream> {
  const map = tunnelsOf(link);
  const { tunnel } = await link.request(TunnelOpen, { target: 'login' }, options);
  const stream = new TunnelStream(link, tunnel);
  map.set(tunnel, stream);
  return stream;
}

export interface TunnelRelayOptions {
  /** The login server this supernode forwards tunnels to (its own configuration). */
  loginServer: { host: string; port: number } | undefined;
  log: Logger;
  /** Open tunnels per link. */
  maxPerLink?: number;
  /** A tunnel with no traffic for this long is closed. */
  idleMs?: number;
  /** Bytes a tunnel may carry each way: a login is a few kilobytes. */
  maxBytes?: number;
  /** Tunnels open (or opening) on this supernode at once. */
  maxTotal?: number;
}

/**
 * The supernode's end: forwards a node's tunnel to the login server over a
 * plain TCP connection. Only the configured login server can be reached
 * (no open proxy), a tunnel carries a bounded number of bytes and closes
 * when idle.
 */
export class LoginTunnelRelay {
  #options: TunnelRelayOptions;
  #nextId = 1;
  #open = 0;
  #opening = 0;
  #links = new Map<Link, LinkTunnels>();

  constructor(options: TunnelRelayOptions) {
    this.#options = options;
  }

  get openTunnels(): number {
    return this.#open;
  }

  /** Register the tunnel handlers in a table shared by many links (per-link state appears with the first tunnel). */
  register(handlers: LinkHandlers): void {
    handlers.handle(TunnelOpen, (_body, link) => this.#open_(link));
    handlers.onNotice(TunnelData, (body, link) => this.#data(link, body.tunnel, body.data));
    handlers.onNotice(TunnelClose, (body, link) => this.#close(link, body.tunnel));
  }

  /** Serve tunnel requests on this link (when it has no shared table with the handlers). */
  serve(link: Link): void {
    if (link.sharedHandlers?.requests.has(TunnelOpen.type)) return;
    link.handle(TunnelOpen, () => this.#open_(link));
    link.onNotice(TunnelData, (body) => this.#data(link, body.tunnel, body.data));
    link.onNotice(TunnelClose, (body) => this.#close(link, body.tunnel));
  }

  #state(link: Link): LinkTunnels {
    let state = this.#links.get(link);
    if (!state) {
      const created: LinkTunnels = { sockets: new Map(), opening: 0 };
      state = created;
      this.#links.set(link, created);
      link.once('close', () => {
        for (const tunnel of created.sockets.values()) tunnel.socket.destroy();
        this.#open -= created.sockets.size;
        created.sockets.clear();
        this.#links.delete(link);
      });
    }
    return state;
  }

  async #open_(link: Link): Promise<{ tunnel: number }> {
    const target = this.#options.loginServer;
    if (!target) throw new PartylineError('ERR_TUNNEL_UNAVAILABLE', 'this supernode knows no login server');
    const maxPerLink = this.#options.maxPerLink ?? 2;
    const maxTotal = this.#options.maxTotal ?? 256;
    const state = this.#state(link);
    // Reserve the slot before connecting: parallel requests must not all pass the check.
    if (state.sockets.size + state.opening >= maxPerLink) throw new PartylineError('ERR_TUNNEL_LIMIT', `at most ${maxPerLink} tunnels per link`);
    if (this.#open + this.#opening >= maxTotal) throw new PartylineError('ERR_TUNNEL_LIMIT', 'this supernode has too many login tunnels open; try again shortly');
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff ? 1 : this.#nextId + 1;
    state.opening++;
    this.#opening++;
    let socket: Socket;
    try {
      socket = await connectTcp(target.host, target.port, 3000);
    } finally {
      state.opening--;
      this.#opening--;
    }
    if (link.closed) {
      socket.destroy();
      throw new PartylineError('ERR_LINK_CLOSED', 'link closed while opening the tunnel');
    }
    const maxBytes = this.#options.maxBytes ?? 256 * 1024;
    const log = this.#options.log;
    state.sockets.set(id, { socket, upBytes: 0 });
    this.#open++;
    let downBytes = 0;
    socket.setTimeout(this.#options.idleMs ?? 30_000, () => socket.destroy());
    socket.on('data', (data: Buffer) => {
      downBytes += data.length;
      if (downBytes > maxBytes) {
        socket.destroy();
        return;
      }
      if (!link.closed) {
        for (let offset = 0; offset < data.length; offset += CHUNK) {
          link.notify(TunnelData, { tunnel: id, data: data.subarray(offset, offset + CHUNK).toString('base64') });
        }
      }
    });
    socket.on('error', (err) => log.debug({ tunnel: id, err: err.message }, 'tunnel socket error'));
    socket.on('close', () => {
      if (state.sockets.delete(id)) {
        this.#open--;
        if (!link.closed) link.notify(TunnelClose, { tunnel: id });
      }
    });
    socket.on('end', () => socket.end());
    log.debug({ tunnel: id, peer: link.remoteAddress }, 'login tunnel opened');
    return { tunnel: id };
  }

  #data(link: Link, id: number, data64: string): void {
    const tunnel = this.#links.get(link)?.sockets.get(id);
    if (!tunnel) return;
    const data = Buffer.from(data64, 'base64');
    tunnel.upBytes += data.length;
    if (tunnel.upBytes > (this.#options.maxBytes ?? 256 * 1024)) tunnel.socket.destroy();
    else tunnel.socket.write(data);
  }

  #close(link: Link, id: number): void {
    const state = this.#links.get(link);
    const tunnel = state?.sockets.get(id);
    if (state && tunnel) {
      state.sockets.delete(id);
      this.#open--;
      tunnel.socket.destroy();
    }
  }
}

interface LinkTunnels {
  sockets: Map<number, { socket: Socket; upBytes: number }>;
  opening: number;
}

function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new PartylineError('ERR_TUNNEL_UNAVAILABLE', `login server ${host}:${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new PartylineError('ERR_TUNNEL_UNAVAILABLE', `login server ${host}:${port}: ${err.message}`, { cause: err }));
    });
  });
}
