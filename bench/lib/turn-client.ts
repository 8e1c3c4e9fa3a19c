/**
 * Just enough TURN (RFC 8656) for bench/relay.ts to drive coturn with the
 * same load generator as our relay: an unauthenticated Allocate (coturn
 * runs with --no-auth) and a ChannelBind to a peer address, over a
 * connected UDP socket. Messages are built with our STUN codec (TURN's
 * attributes as raw values) and read with the relay's attribute scanner,
 * since the STUN codec refuses the comprehension-required TURN attributes it
 * does not know.
 */
import type { Socket } from 'node:dgram';
import { decodeAttribute, encodeAttribute } from '../../src/nat/stun/attributes.js';
import type { StunAttribute } from '../../src/nat/stun/attributes.js';
import type { TransportAddress } from '../../src/nat/stun/address.js';
import { AttributeType } from '../../src/nat/stun/constants.js';
import { createTransactionId, encodeStunMessage } from '../../src/nat/stun/message.js';
import { ATTR_CHANNEL_NUMBER, ATTR_XOR_PEER_ADDRESS, scanStun } from '../../src/relay/channel-bind.js';
import type { ScannedStun } from '../../src/relay/channel-bind.js';

const ALLOCATE = 0x003;
const CHANNEL_BIND = 0x009;
const REQUESTED_TRANSPORT = 0x0019;
const XOR_RELAYED_ADDRESS = 0x0016;
const UDP_TRANSPORT = Buffer.from([17, 0, 0, 0]);

/** One request/response on a connected socket: retransmitted every 250 ms, 8 tries; an error response rejects. */
function transact(socket: Socket, method: number, attributes: (transactionId: Buffer) => StunAttribute[]): Promise<ScannedStun> {
  const transactionId = createTransactionId();
  const request = encodeStunMessage({ method, class: 'request', transactionId, attributes: attributes(transactionId) }, { fingerprint: true });
  const name = `TURN ${method === ALLOCATE ? 'Allocate' : 'ChannelBind'}`;
  return new Promise((resolve, reject) => {
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (err: Error | undefined, value?: ScannedStun): void => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      if (err) reject(err);
      else resolve(value!);
    };
    const onMessage = (packet: Buffer): void => {
      if (packet.length < 20 || packet[0]! > 3 || !packet.subarray(8, 20).equals(transactionId)) return;
      const message = scanStun(packet);
      if (message.class !== 'error') {
        done(undefined, message);
        return;
      }
      const code = message.attributes.find((a) => a.type === AttributeType.ERROR_CODE)?.value;
      done(new Error(`${name}: error ${code && code.length >= 4 ? `${code[2]! * 100 + code[3]!} ${code.subarray(4).toString()}` : '?'}`));
    };
    const send = (): void => {
      if (++tries > 8) {
        done(new Error(`${name}: no answer`));
        return;
      }
      socket.send(request);
      timer = setTimeout(send, 250);
    };
    socket.on('message', onMessage);
    send();
  });
}

/** Allocate a relayed address for this socket's 5-tuple; returns it. */
export async function turnAllocate(socket: Socket): Promise<TransportAddress> {
  const response = await transact(socket, ALLOCATE, () => [{ kind: 'raw', type: REQUESTED_TRANSPORT, value: UDP_TRANSPORT }]);
  const relayed = response.attributes.find((a) => a.type === XOR_RELAYED_ADDRESS);
  if (!relayed) throw new Error('TURN Allocate: no XOR-RELAYED-ADDRESS');
  const decoded = decodeAttribute(AttributeType.XOR_MAPPED_ADDRESS, relayed.value, response.transactionId);
  if (decoded.kind !== 'xor-mapped-address') throw new Error('TURN Allocate: bad XOR-RELAYED-ADDRESS');
  return decoded.value;
}

/** Bind `channel` to `peer` on this socket's allocation (which also installs the permission for the peer). */
export async function turnChannelBind(socket: Socket, channel: number, peer: TransportAddress): Promise<void> {
  const channelValue = Buffer.alloc(4);
  channelValue.writeUInt16BE(channel, 0);
  await transact(socket, CHANNEL_BIND, (transactionId) => [
    { kind: 'raw', type: ATTR_CHANNEL_NUMBER, value: channelValue },
    // XOR-PEER-ADDRESS is encoded as XOR-MAPPED-ADDRESS is, against this request's transaction id.
    { kind: 'raw', type: ATTR_XOR_PEER_ADDRESS, value: encodeAttribute({ kind: 'xor-mapped-address', value: peer }, transactionId) },
  ]);
}
