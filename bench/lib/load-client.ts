/**
 * Load generator for bench/supernode-capacity: many lightweight ordinary
 * nodes in one process, each with its own identity and credential, each on
 * its own Noise link (the project's own establishLink/Link code) from a
 * loopback source address 127.0.x.y. Each one does what an ordinary node
 * does towards its supernode: TCP connect, Noise XX, `attach` with its
 * credential, then a `link.ping` every keepAliveS (the interval the
 * supernode returns in its Attach answer), first ping at a random offset so
 * the keep-alives of a long-running population are spread evenly.
 *
 * Started with child_process.fork; commands and replies travel over IPC
 * (bench/lib/load-protocol.ts). Exits when the parent goes away.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { bulkIdentity } from './bulk-identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { establishLink } from '../../src/link/transport.js';
import { Attach, Leaving, Supernodes } from '../../src/overlay/messages.js';
import { createRootLogger } from '../../src/system/logging.js';
import { percentiles, sourceAddress } from './load-protocol.js';
import type { AttachCommand, LoadCommand, LoadReply, PrepareCommand } from './load-protocol.js';

interface Client {
  identity: Identity;
  credential: Credential;
  link?: Link;
  timer?: NodeJS.Timeout;
}

const log = createRootLogger({ level: 'silent' });
const clients: Client[] = [];
let network = 'lab';
let attached = 0;
let closedAfterAttach = 0;
let nextIndex = 0;
let keepAliveS = 0;
let pingsOk = 0;
let pingsFailed = 0;
let rtts: number[] = [];
let pingErrors: Record<string, number> = {};
let closing = false;

function reply(message: LoadReply, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

function codeOf(err: unknown): string {
  return (err as { code?: string }).code ?? (err as Error).name ?? 'Error';
}

function count(into: Record<string, number>, err: unknown): void {
  const code = codeOf(err);
  into[code] = (into[code] ?? 0) + 1;
}

function prepare(command: PrepareCommand): void {
  const started = performance.now();
  network = command.network;
  const loginKey = { publicKey: Buffer.from(command.loginKey.publicKey, 'base64'), privateKey: Buffer.from(command.loginKey.privateKey, 'base64') };
  const issued = Date.now();
  for (let i = clients.length; i < command.count; i++) {
    const identity = bulkIdentity();
    const credential = issueCredential(
      {
        user: `bench${i}`,
        deviceId: identity.deviceId,
        deviceKey: identity.signing.publicKey.toString('base64'),
        noiseKey: identity.noise.publicKey.toString('base64'),
        network,
        issued,
        expires: issued + 24 * 3600_000,
      },
      loginKey,
    );
    clients.push({ identity, credential });
  }
  reply({ type: 'prepared', count: clients.length, ms: performance.now() - started });
}

function connectFrom(host: string, port: number, localAddress: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect from ${localAddress}: no answer within ${timeoutMs} ms`), { code: 'ERR_TIMEOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
  });
}

function keepAlive(client: Client, link: Link, periodS: number): void {
  const ping = (): void => {
    link.ping({ timeoutMs: Math.min(10_000, periodS * 1000) }).then(
      (rtt) => {
        pingsOk++;
        rtts.push(rtt);
      },
      (err: unknown) => {
        if (closing) return;
        pingsFailed++;
        count(pingErrors, err);
      },
    );
  };
  // As a node that has been attached for a while: its keep-alive falls anywhere in the interval.
  client.timer = setTimeout(() => {
    ping();
    client.timer = setInterval(ping, periodS * 1000);
  }, Math.random() * periodS * 1000);
}

async function attachOne(client: Client, index: number, command: AttachCommand): Promise<void> {
  const socket = await connectFrom(command.host, command.port, sourceAddress(Math.floor(index / command.perAddress)), 5000);
  const { link } = await establishLink(socket, {
    identity: client.identity,
    network,
    role: 'node',
    log,
    host: command.host,
    port: command.port,
    setup: (l) => {
      // What an ordinary node does with supernode gossip is not this bench's subject: accept and drop it.
      l.onNotice(Supernodes, () => undefined);
      l.onNotice(Leaving, () => undefined);
    },
  });
  try {
    const answer = await link.request(Attach, { credential: client.credential as unknown as Record<string, unknown> });
    keepAliveS = answer.keepAliveS;
  } catch (err) {
    link.close();
    throw err;
  }
  client.link = link;
  attached++;
  link.once('close', () => {
    clearTimeout(client.timer);
    clearInterval(client.timer);
    client.link = undefined;
    attached--;
    if (!closing) closedAfterAttach++;
  });
  keepAlive(client, link, keepAliveS);
}

async function attach(command: AttachCommand): Promise<void> {
  const started = performance.now();
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let failures = 0;
  let added = 0;
  let inFlight = 0;
  const worker = async (): Promise<void> => {
    while (attached + inFlight < command.target && nextIndex < clients.length && !closing) {
      const index = nextIndex++;
      inFlight++;
      const client = clients[index]!;
      for (let attempt = 1; ; attempt++) {
        const t0 = performance.now();
        try {
          await attachOne(client, index, command);
          latencies.push(performance.now() - t0);
          added++;
          break;
        } catch (err) {
          failures++;
          count(errors, err);
          if (attempt >= 3 || closing) break;
        }
      }
      inFlight--;
    }
  };
  const workers = Array.from({ length: Math.min(command.parallel, command.target) }, () => worker());
  await Promise.all(workers);
  reply({
    type: 'attached',
    attached,
    added,
    failures,
    ms: performance.now() - started,
    latency: percentiles(latencies),
    keepAliveS,
    errors,
  });
}

function stats(): void {
  reply({ type: 'stats', attached, closed: closedAfterAttach, pingsOk, pingsFailed, rtt: percentiles(rtts), errors: pingErrors });
  pingsOk = 0;
  pingsFailed = 0;
  rtts = [];
  pingErrors = {};
}

function closeAll(): void {
  closing = true;
  for (const client of clients) {
    clearTimeout(client.timer);
    clearInterval(client.timer);
    client.link?.close();
  }
}

process.on('message', (message: LoadCommand) => {
  const run = async (): Promise<void> => {
    switch (message.type) {
      case 'prepare':
        prepare(message);
        break;
      case 'attach':
        await attach(message);
        break;
      case 'stats':
        stats();
        break;
      case 'close':
        closeAll();
        reply({ type: 'closed' }, () => process.disconnect());
        break;
    }
  };
  run().catch((err: unknown) => reply({ type: 'error', message: (err as Error).stack ?? String(err) }));
});

// The bench went away (finished, crashed or was killed): drop every link and leave.
process.on('disconnect', () => {
  closeAll();
  setTimeout(() => process.exit(0), 200).unref();
});
