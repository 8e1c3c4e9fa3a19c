import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import type { NatBehaviour } from '../../src/nat/classify.js';
import type { TransportAddress } from '../../src/nat/stun/address.js';

/**
 * A NAT in user space for tests: what the inside sends goes out through an
 * "outside" UDP socket on loopback chosen by the mapping behaviour; what
 * comes back to that socket is let in or dropped by the filtering behaviour
 * (RFC 4787). The inside is a callback, so a `StunClient` whose `send` is
 * `nat.send` sits behind it.
 */
export class FakeNat {
  readonly #mapping: NatBehaviour;
  readonly #filtering: NatBehaviour;
  readonly #deliver: (msg: Buffer, rinfo: RemoteInfo) => void;
  readonly #mappings = new Map<string, { socket: Socket; contacted: Set<string> }>();
  dropped = 0;

  constructor(mapping: NatBehaviour, filtering: NatBehaviour, deliver: (msg: Buffer, rinfo: RemoteInfo) => void) {
    this.#mapping = mapping;
    this.#filtering = filtering;
    this.#deliver = deliver;
  }

  send(data: Buffer, to: TransportAddress): void {
    const key = this.#mapping === 'endpoint-independent' ? '*' : this.#mapping === 'address-dependent' ? to.address : `${to.address}:${to.port}`;
    let mapping = this.#mappings.get(key);
    if (mapping === undefined) {
      const socket = createSocket('udp4');
      const contacted = new Set<string>();
      socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
        const allowed =
          this.#filtering === 'endpoint-independent' ||
          (this.#filtering === 'address-dependent' ? [...contacted].some((c) => c.startsWith(`${rinfo.address}:`)) : contacted.has(`${rinfo.address}:${rinfo.port}`));
        if (allowed) this.#deliver(msg, rinfo);
        else this.dropped++;
      });
      mapping = { socket, contacted };
      this.#mappings.set(key, mapping);
    }
    mapping.contacted.add(`${to.address}:${to.port}`);
    mapping.socket.send(data, to.port, to.address);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#mappings.values()].map(({ socket }) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    this.#mappings.clear();
  }
}
