/**
 * The relay under test in bench/relay.ts, in a process of its own (forked
 * with IPC, pinned to its own CPU by the bench): a UdpEndpoint answering
 * STUN as a supernode's does, a LinkServer whose links carry the relay's
 * messages, and the RelayService on both.
 *
 * What differs from a production supernode, and why: every link counts as
 * attached (user "bench": attach is not what is measured), the quotas and
 * the ChannelBind rate limit are lifted and the link message rate raised
 * (all the load comes from one user at one address, and thousands of
 * allocations are set up in seconds), and allocations idle out after 10
 * minutes instead of 30 s (the bench pauses traffic between steps).
 *
 * IPC: sends {type: 'ready', tcpPort, udpPort}; answers {type: 'stats'}
 * with {type: 'stats', stats}; exits on {type: 'stop'} or when the parent goes.
 */
import { generateIdentity } from '../../src/crypto/identity.js';
import { LinkHandlers } from '../../src/link/link.js';
import { LinkServer } from '../../src/link/transport.js';
import { UdpEndpoint } from '../../src/nat/udp-endpoint.js';
import { RelayService } from '../../src/relay/service.js';
import { silentLogger } from '../../src/system/logging.js';

export type RunnerMessage = { type: 'ready'; tcpPort: number; udpPort: number } | { type: 'stats'; stats: ReturnType<RelayService['stats']> };

async function main(): Promise<void> {
  const log = silentLogger();
  const handlers = new LinkHandlers();
  const identity = generateIdentity();
  const server = new LinkServer({
    identity, network: 'bench', role: 'supernode', log, host: '127.0.0.1', port: 0,
    link: { handlers, maxMessagesPerSecond: 1_000_000, burst: 1_000_000 },
    onLink: () => undefined,
  });
  await server.start();
  const udp = new UdpEndpoint({ host: '127.0.0.1', port: 0, log, stunServer: { advertise: '127.0.0.1', alternatePort: 0 } });
  await udp.start();
  const relay = new RelayService({
    log,
    limits: { maxAllocations: 1_000_000, perUserMax: 1_000_000, idleS: 600, kbps: 256 /* the default supernode.relayKbps: measure what a deployment runs */ },
    attached: () => ({ user: 'bench', deviceId: 'bench' }),
    udp,
    udpAddress: () => `127.0.0.1:${udp.port}`,
    tcpAddress: () => `127.0.0.1:${server.port}`,
    bindRateLimit: { burst: 1_000_000, perSecond: 1_000_000 },
  });
  relay.register(handlers);
  relay.start();
  const stop = async (): Promise<void> => {
    relay.stop();
    await udp.stop();
    await server.stop();
    process.exit(0);
  };
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stats') process.send!({ type: 'stats', stats: relay.stats() } satisfies RunnerMessage);
    if (message.type === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  process.send!({ type: 'ready', tcpPort: server.port, udpPort: udp.port } satisfies RunnerMessage);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
