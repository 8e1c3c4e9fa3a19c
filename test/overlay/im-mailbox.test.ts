import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import type { HeldMessage } from '../../src/overlay/im/mailbox-messages.js';
import { MailboxDelete, MailboxFetch, MailboxPut, MailboxStore as MailboxStoreRequest, MailboxTake } from '../../src/overlay/im/mailbox-messages.js';
import { MailboxStore } from '../../src/overlay/im/mailbox-store.js';
import { INDEX_LINK_ROLE, IndexHello } from '../../src/overlay/index/link-pool.js';
import { PresenceSet } from '../../src/overlay/presence/messages.js';
import { SEALED_LIFETIME_MS } from '../../src/overlay/route/sealed.js';
import { until } from '../helpers/until.js';
import type { LocationRecord } from '../../src/overlay/index/record.js';
import { makeDevice, makeRecord, NETWORK, T0 } from './index/fixtures.js';
import {
  attachPhone, byDistance, clock, closerIdentity, K, log, presenceOf, startNetwork, startSupernode, stopSupernode,
} from './presence-network.js';
import type { Phone, Supernode } from './presence-network.js';

function held(id: string, fields: Partial<HeldMessage> = {}): HeldMessage {
  return {
    id,
    from: { user: 'alice', deviceId: 'aaaaaaaaaaaaaaaa', supernode: '192.0.2.1:4000' },
    to: { user: 'bob', deviceId: 'bbbbbbbbbbbbbbbb' },
    sealed: Buffer.alloc(100, id.length).toString('base64'),
    sentAt: T0,
    ...fields,
  };
}

describe('MailboxStore', () => {
  it('holds per device, answers a copy as unchanged, hands out oldest first, deletes what was delivered', () => {
    const store = new MailboxStore();
    expect(store.put(held('message-2', { sentAt: T0 + 5 }), T0 + 10)).toBe('stored');
    expect(store.put(held('message-1'), T0 + 10)).toBe('stored');
    expect(store.put(held('message-1'), T0 + 10)).toBe('unchanged');
    expect(store.put(held('message-3', { to: { user: 'bob', deviceId: 'cccccccccccccccc' } }), T0 + 10)).toBe('stored');
    expect(store.take('bob', 'bbbbbbbbbbbbbbbb', T0 + 20)).toEqual({ messages: [held('message-1'), held('message-2', { sentAt: T0 + 5 })], more: false });
    expect(store.delete('bob', 'bbbbbbbbbbbbbbbb', ['message-1', 'message-2', 'never-was'])).toBe(2);
    expect(store.take('bob', 'bbbbbbbbbbbbbbbb', T0 + 20).messages).toEqual([]);
    expect(store.size).toBe(1);
    expect(store.users()).toEqual(['bob']);
  });

  it('hands out at most a frame\'s worth at once, but always one', () => {
    const store = new MailboxStore();
    const big = 'A'.repeat(30_000);
    for (let i = 0; i < 3; i++) store.put(held(`message-${i}`, { sealed: big, sentAt: T0 + i }), T0 + 10);
    const first = store.take('bob', 'bbbbbbbbbbbbbbbb', T0 + 10);
    expect(first.messages.map((m) => m.id)).toEqual(['message-0']);
    expect(first.more).toBe(true);
    expect(store.take('bob', 'bbbbbbbbbbbbbbbb', T0 + 10, 10).messages).toHaveLength(1);
  });

  it('keeps a message 72 h after it was sent, never longer than 72 h after it arrived', () => {
    const store = new MailboxStore();
    store.put(held('message-1'), T0 + 1000);
    // A sender's supernode that claims a time in the future gains nothing.
    store.put(held('message-2', { sentAt: T0 + 10 * SEALED_LIFETIME_MS }), T0 + 1000);
    expect(() => store.put(held('message-3', { sentAt: T0 - SEALED_LIFETIME_MS }), T0 + 1)).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_EXPIRED' }));
    expect(store.expire(T0 + SEALED_LIFETIME_MS - 1)).toBe(0);
    expect(store.expire(T0 + SEALED_LIFETIME_MS)).toBe(1);
    expect(store.expire(T0 + 1000 + SEALED_LIFETIME_MS)).toBe(1);
    expect(store.size).toBe(0);
    expect(store.bytes).toBe(0);
  });

  it('has limits per device and in all', () => {
    const store = new MailboxStore({ maxPerDevice: 2, maxBytes: 500 });
    store.put(held('message-1'), T0);
    store.put(held('message-2'), T0);
    expect(() => store.put(held('message-3'), T0)).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_FULL' }));
    store.put(held('message-4', { to: { user: 'carol', deviceId: 'cccccccccccccccc' } }), T0);
    expect(() => store.put(held('message-5', { to: { user: 'dave', deviceId: 'dddddddddddddddd' }, sealed: 'A'.repeat(200) }), T0)).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_FULL' }));
  });

  it('has limits per sender, so one user cannot fill a mailbox for everyone else; delivered ones free the quota', () => {
    const store = new MailboxStore({ maxPerDevice: 10, maxPerSenderPerDevice: 3, maxPerSender: 5 });
    for (let i = 0; i < 3; i++) store.put(held(`message-${i}`), T0);
    expect(() => store.put(held('message-3'), T0)).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_SENDER_QUOTA' }));
    // Someone else still gets through to bob.
    const carol = { user: 'carol', deviceId: 'cccccccccccccccc', supernode: '192.0.2.1:4000' };
    expect(store.put(held('message-c1', { from: carol }), T0)).toBe('stored');
    // Alice's total across recipients.
    store.put(held('message-4', { to: { user: 'dave', deviceId: 'dddddddddddddddd' } }), T0);
    store.put(held('message-5', { to: { user: 'erin', deviceId: 'eeeeeeeeeeeeeeee' } }), T0);
    expect(() => store.put(held('message-6', { to: { user: 'fred', deviceId: 'ffffffffffffffff' } }), T0)).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_SENDER_QUOTA' }));
    expect(store.delete('bob', 'bbbbbbbbbbbbbbbb', ['message-0'])).toBe(1);
    expect(store.put(held('message-3'), T0)).toBe('stored');
  });

  it('holds to its share what one other supernode hands over (it names the senders itself); delivered ones free the share', () => {
    const store = new MailboxStore({ maxBytes: 10_000, maxBytesPerSupernode: 1_000 });
    const big = 'A'.repeat(400);
    // A rogue supernode makes up a new sender and recipient for each message: the per-sender quotas do not see it.
    const forged = (i: number) => held(`forged-${i}`, { sealed: big, from: { user: `nobody${i}`, deviceId: 'nnnnnnnnnnnnnnnn', supernode: '192.0.2.66:4000' }, to: { user: `victim${i}`, deviceId: 'vvvvvvvvvvvvvvvv' } });
    store.put(forged(1), T0, '192.0.2.66:4000');
    store.put(forged(2), T0, '192.0.2.66:4000');
    expect(() => store.put(forged(3), T0, '192.0.2.66:4000')).toThrow(expect.objectContaining({ code: 'ERR_MAILBOX_FULL' }));
    // Other supernodes, and this one's own phones, still get their messages held.
    expect(store.put(held('message-1', { sealed: big }), T0, '192.0.2.1:4000')).toBe('stored');
    expect(store.put(held('message-2', { sealed: big }), T0)).toBe('stored');
    expect(store.delete('victim1', 'vvvvvvvvvvvvvvvv', ['forged-1'])).toBe(1);
    expect(store.put(forged(3), T0, '192.0.2.66:4000')).toBe('stored');
  });
});

describe('MailboxService: five supernodes over real links', () => {
  let nodes: Supernode[];
  const extra: Supernode[] = [];
  let alice: Phone;
  const bobDevice = makeDevice('bob');
  const sealed = Buffer.from('sealed bytes the supernodes cannot read').toString('base64');

  /** Bob's device exists: its location record (naming the supernode it will attach to) is in the index. */
  let bobRecord: LocationRecord;

  beforeAll(async () => {
    nodes = await startNetwork(5);
    alice = await attachPhone(byDistance(nodes, 'bob')[K]!, 'alice');
    bobRecord = makeRecord('bob', bobDevice, { issued: clock.now, device: { deviceId: bobDevice.identity.deviceId, supernode: byDistance(nodes, 'bob')[K + 1]!.address, addresses: [], since: clock.now } });
    expect((await nodes[0]!.index.publish(bobRecord)).replicas).toBe(K);
  });

  afterAll(async () => {
    alice?.link.close();
    for (const sn of [...nodes, ...extra]) await stopSupernode(sn);
  });

  it('holds a message for an offline device on the k supernodes responsible for its user, stamped with the sender', async () => {
    expect(await alice.link.request(MailboxPut, { to: { user: 'Bob', deviceId: bobDevice.identity.deviceId }, id: 'message-0001', sealed })).toEqual({ held: K });
    const holding = nodes.filter((sn) => sn.mailbox.store.size === 1).map((sn) => sn.name).sort();
    expect(holding).toEqual(byDistance(nodes, 'bob').slice(0, K).map((sn) => sn.name).sort());
    const copy = byDistance(nodes, 'bob')[0]!.mailbox.store.forUser('bob', clock.now)[0];
    expect(copy).toMatchObject({ id: 'message-0001', sealed, from: { user: 'alice', deviceId: alice.device.identity.deviceId, supernode: alice.supernode.address }, to: { user: 'bob' } });
  });

  it('holds nothing for a device it does not know exists (no live record, no signed update): made-up device ids fill nothing', async () => {
    await expect(alice.link.request(MailboxPut, { to: { user: 'bob', deviceId: 'ffffffffffffffff' }, id: 'made-up-0001', sealed })).rejects.toMatchObject({ code: 'ERR_MAILBOX_UNREACHABLE' });
    expect(nodes.map((sn) => sn.mailbox.store.forUser('bob', clock.now).filter((m) => m.to.deviceId === 'ffffffffffffffff'))).toEqual([[], [], [], [], []]);
    // Nor when another supernode hands one over.
    const rogue = generateIdentity();
    const { credential } = makeDevice('rogue', { identity: rogue });
    const holder = byDistance(nodes, 'bob')[0]!;
    const { link } = await dialLink({ identity: rogue, network: NETWORK, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: holder.server.port });
    try {
      await link.request(IndexHello, { address: '127.0.0.1:9' });
      const message = { id: 'made-up-0002', from: { user: 'mallory', deviceId: 'mmmmmmmmmmmmmmmm', supernode: '127.0.0.1:9' }, to: { user: 'bob', deviceId: 'ffffffffffffffff' }, sealed, sentAt: clock.now };
      await expect(link.request(MailboxStoreRequest, { message })).rejects.toMatchObject({ code: 'ERR_MAILBOX_NO_DEVICE' });
    } finally {
      link.close();
    }
    expect(holder.mailbox.store.size).toBe(1);
  });

  it('lets only the supernode the device named take or delete its messages', async () => {
    const rogue = generateIdentity();
    const { credential } = makeDevice('rogue', { identity: rogue });
    const holder = byDistance(nodes, 'bob')[0]!;
    const { link } = await dialLink({ identity: rogue, network: NETWORK, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: holder.server.port });
    try {
      await link.request(IndexHello, { address: '127.0.0.1:9' });
      await expect(link.request(MailboxTake, { user: 'bob', deviceId: bobDevice.identity.deviceId })).rejects.toMatchObject({ code: 'ERR_MAILBOX_NOT_AUTHORIZED' });
      await expect(link.request(MailboxDelete, { user: 'bob', deviceId: bobDevice.identity.deviceId, ids: ['message-0001'] })).rejects.toMatchObject({ code: 'ERR_MAILBOX_NOT_AUTHORIZED' });
    } finally {
      link.close();
    }
    expect(holder.mailbox.store.size).toBe(1);
  });

  it('delivers at the device\'s next login, as routed messages, then deletes it everywhere', async () => {
    clock.now += 1000;
    const bob = await attachPhone(byDistance(nodes, 'bob')[K + 1]!, 'bob', bobDevice);
    try {
      await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online') } });
      expect(await bob.link.request(MailboxFetch, {})).toEqual({ delivered: 1 });
      expect(bob.delivered).toEqual([{ from: { user: 'alice', deviceId: alice.device.identity.deviceId, supernode: alice.supernode.address }, sealed, held: true }]);
      expect(nodes.map((sn) => sn.mailbox.store.size)).toEqual([0, 0, 0, 0, 0]);
      expect(await bob.link.request(MailboxFetch, {})).toEqual({ delivered: 0 });

      // Online now: a message held for it (the sender tried a stale record) is pushed at once.
      await alice.link.request(MailboxPut, { to: { user: 'bob', deviceId: bobDevice.identity.deviceId }, id: 'message-0002', sealed });
      await until('bob to get the nudged message', async () => bob.delivered.length === 2);
      await until('the copies to go', async () => nodes.every((sn) => sn.mailbox.store.size === 0));
    } finally {
      bob.link.close();
    }
  });

  it('copies held messages to a supernode that becomes responsible', async () => {
    await alice.link.request(MailboxPut, { to: { user: 'bob', deviceId: bobDevice.identity.deviceId }, id: 'message-0003', sealed });
    const newcomer = await startSupernode('sn5', { identity: closerIdentity(nodes, 'bob') });
    extra.push(newcomer);
    await newcomer.index.join([nodes[0]!.index.self]);
    for (const sn of nodes) await sn.index.join([newcomer.index.self]);
    // Bob's record reaches the newcomer too (the device republishes it; so does the index on churn): it holds only for devices it knows.
    await nodes[0]!.index.publish(bobRecord);
    expect(newcomer.index.node.store.get('bob', clock.now)).toHaveLength(1);
    for (const sn of nodes) await sn.mailbox.replicate();
    expect(newcomer.mailbox.store.forUser('bob', clock.now).map((m) => m.id)).toEqual(['message-0003']);
  });

  it('refuses a put that is too frequent, and one for an impossible id', async () => {
    await expect(alice.link.request(MailboxPut, { to: { user: 'bob', deviceId: bobDevice.identity.deviceId }, id: 'x', sealed })).rejects.toMatchObject({ code: 'ERR_WIRE_BODY' });
    const puts = await Promise.allSettled(Array.from({ length: 30 }, (_, i) =>
      alice.link.request(MailboxPut, { to: { user: 'carol', deviceId: 'cccccccccccccccc' }, id: `burst-${String(i).padStart(4, '0')}`, sealed })));
    expect(puts.filter((p) => p.status === 'rejected' && (p.reason as { code: string }).code === 'ERR_MAILBOX_BUSY').length).toBeGreaterThan(0);
  });
});
