import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';

/** A UDP socket bound on `address`, any port. */
export function udpSocket(address = '127.0.0.1', port = 0): Promise<Socket> {
  const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}

/** Whether this host lets us bind `address` (all of 127/8 on Linux; only 127.0.0.1 elsewhere). */
export async function canBind(address: string): Promise<boolean> {
  try {
    await closeSocket(await udpSocket(address));
    return true;
  } catch {
    return false;
  }
}

/** UDP sockets open in this process. */
export function openUdpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}
