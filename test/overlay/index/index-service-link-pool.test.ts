import { afterEach, describe, expect, it } from 'vitest';
import type { VerifiedPeer } from '../../../src/crypto/handshake-payload.js';
import { generateIdentity } from '../../../src/crypto/identity.js';
import type { Identity } from '../../../src/crypto/identity.js';
import { LinkServer } from '../../../src/link/transport.js';
import { IndexHello, INDEX_LINK_ROLE, LinkPool } from '../../../src/overlay/index/link-pool.js';
import type { LinkPoolOptions } from '../../../src/overlay/index/link-pool.js';
import { IndexPing } from '../../../src/overlay/index/messages.js';
import { idToHex, supernodeId } from '../../../src/overlay/index/node-id.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';
import { silentLogger } from '../../../src/system/logging.js';
import { makeDevice, NETWORK } from './fixtures.js';

const log = silentLogger();
const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

interface Remote {
  identity: Identity;
  contact: ContactInfo;
  server: LinkServer;
  peers: VerifiedPeer[];
  hellos: string[];
  /** Pings wait for this while it is set. */
  gate: Promise<void> | undefined;
}

/** A supernode stand-in that answers index.hello and index.ping and records who dialled it. */
async function remote(): Promise<Remote> {
  const identity = generateIdentity();
  const id = supernodeId(identity.noise.publicKey);
  const r: Remote = { identity, contact: { id, address: '' }, server: undefined as unknown as LinkServer, peers: [], hellos: [], gate: undefined };
  r.server = new LinkServer({
    identity, network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0,
    onLink: ({ link, peer }) => {
      r.peers.push(peer);
      link.handle(IndexHello, (body) => {
        r.hellos.push(body.address);
        return { id: idToHex(id) };
      });
      link.handle(IndexPing, async () => {
        await r.gate;
        return { id: idToHex(id) };
      });
    },
  });
  await r.server.start();
  stops.push(() => r.server.stop());
  r.contact = { id, address: `127.0.0.1:${r.server.port}`, publicKey: identity.noise.publicKey.toString('base64') };
  return r;
}

function pool(options: Partial<LinkPoolOptions> = {}): LinkPool {
  const identity = generateIdentity();
  const { credential } = makeDevice('sn-pool', { identity });
  const p = new LinkPool({ identity, network: NETWORK, log, credential: () => credential, announce: '127.0.0.1:4999', ...options });
  p.start();
  stops.push(() => p.stop());
  return p;
}

/** What `probe` returns once it is empty, or after a second (checked between timer ticks, so the wait itself is not counted). */
async function settled(probe: () => string[]): Promise<string[]> {
  for (let i = 0; i < 50 && probe().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return probe();
}

const ping = (p: LinkPool, c: ContactInfo, timeoutMs = 2_000): Promise<{ id: string }> => p.request(c, IndexPing, {}, { timeoutMs });

describe('LinkPool', () => {
  it('dials once per contact with its credential and the index role, says hello, and reuses the link', async () => {
    const r = await remote();
    const p = pool();
    const answers = await Promise.all([ping(p, r.contact), ping(p, r.contact), ping(p, r.contact)]);
    expect(answers.map((a) => a.id)).toEqual(Array(3).fill(idToHex(r.contact.id)));
    await ping(p, r.contact);
    expect(r.server.connections).toBe(1);
    expect(p.size).toBe(1);
    expect(r.peers).toHaveLength(1);
    expect(r.peers[0]).toMatchObject({ role: INDEX_LINK_ROLE, credential: { user: 'sn-pool' } });
    expect(r.hellos).toEqual(['127.0.0.1:4999']);
    // The contact as the link proved it.
    expect(p.contact(r.contact.id)).toEqual(r.contact);
  });

  it('dials contacts without a key over XX and keeps them only if the proven key hashes to their id', async () => {
    const r = await remote();
    const p = pool();
    await expect(ping(p, { id: r.contact.id, address: r.contact.address })).resolves.toEqual({ id: idToHex(r.contact.id) });
    expect(p.contact(r.contact.id)?.publicKey).toBe(r.contact.publicKey);

    const other = await remote();
    const liar = { id: r.contact.id ^ 1n, address: other.contact.address };
    await expect(ping(p, liar)).rejects.toMatchObject({ code: 'ERR_INDEX_PEER_KEY' });
    expect(p.has(liar.id)).toBe(false);
    await expect.poll(() => other.server.connections).toBe(0);
  });

  it('refuses a contact whose key does not hash to its id, and a contact that does not hold its key', async () => {
    const r = await remote();
    const impostor = await remote();
    const p = pool();
    await expect(ping(p, { ...r.contact, id: r.contact.id ^ 1n })).rejects.toMatchObject({ code: 'ERR_INDEX_PEER_KEY' });
    // Right id and key, but another supernode answers at that address: the IK handshake fails.
    await expect(ping(p, { ...r.contact, address: impostor.contact.address })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_NOISE_/) });
    expect(p.size).toBe(0);
  });

  it('keeps at most maxLinks open, closing the least recently used idle one, and refuses when all are busy', async () => {
    const [a, b, c] = [await remote(), await remote(), await remote()];
    const p = pool({ maxLinks: 2 });
    await ping(p, a.contact);
    await ping(p, b.contact);
    await ping(p, a.contact);
    await ping(p, c.contact);
    expect([p.has(a.contact.id), p.has(b.contact.id), p.has(c.contact.id)]).toEqual([true, false, true]);
    await expect.poll(() => b.server.connections).toBe(0);

    let open!: () => void;
    a.gate = new Promise((resolve) => (open = resolve));
    c.gate = a.gate;
    const held = [ping(p, a.contact), ping(p, c.contact)];
    await expect(ping(p, b.contact)).rejects.toMatchObject({ code: 'ERR_INDEX_POOL_FULL' });
    open();
    await Promise.all(held);
    await expect(ping(p, b.contact)).resolves.toEqual({ id: idToHex(b.contact.id) });
  });

  it('closes idle links after idleMs', async () => {
    const r = await remote();
    const p = pool({ idleMs: 200 });
    await ping(p, r.contact);
    expect(p.size).toBe(1);
    await expect.poll(() => p.size, { timeout: 3_000 }).toBe(0);
    await expect.poll(() => r.server.connections).toBe(0);
  });

  it('paces requests on one link and fails those that could not be sent before their deadline', async () => {
    const r = await remote();
    const p = pool({ requestsPerSecond: 2, burst: 1 });
    await ping(p, r.contact);
    await expect(ping(p, r.contact, 200)).rejects.toMatchObject({ code: 'ERR_INDEX_BUSY' });
    // One that can wait for its turn is sent.
    await expect(ping(p, r.contact, 3_000)).resolves.toEqual({ id: idToHex(r.contact.id) });
  });

  it('stops twice without complaint, fails what was in flight, and leaves no timer or socket behind', async () => {
    const handles = (): string[] => process.getActiveResourcesInfo().filter((kind) => /^(Timeout|Immediate|TCP)/.test(kind));
    const r = await remote();
    const p = pool({ requestsPerSecond: 1, burst: 2 });
    await ping(p, r.contact);
    r.gate = new Promise(() => undefined);
    const inFlight = ping(p, r.contact, 10_000);
    const paced = ping(p, r.contact, 10_000);
    await new Promise((resolve) => setImmediate(resolve));
    p.stop();
    p.stop();
    await expect(inFlight).rejects.toMatchObject({ code: 'ERR_LINK_CLOSED' });
    await expect(paced).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(ping(p, r.contact)).rejects.toMatchObject({ code: 'ERR_INDEX_STOPPED' });
    await r.server.stop();
    expect(await settled(handles)).toEqual([]);
  });
});
