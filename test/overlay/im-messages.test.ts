import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageHistory } from '../../src/overlay/im/history.js';
import { InstantMessages } from '../../src/overlay/im/instant-messages.js';
import { MailboxFetch } from '../../src/overlay/im/mailbox-messages.js';
import { NodeIndexPublish, NodeIndexSearch } from '../../src/overlay/index/node-messages.js';
import { PresenceSet } from '../../src/overlay/presence/messages.js';
import { Messenger } from '../../src/overlay/route/messenger.js';
import { RouteDeliver } from '../../src/overlay/route/messages.js';
import { memoryLogger } from '../helpers/log.js';
import { until } from '../helpers/until.js';
import { loginServer, makeDevice, makeRecord, NETWORK, T0 } from './index/fixtures.js';
import type { Device } from './index/fixtures.js';
import { attachPhone, clock, presenceOf, startNetwork, stopSupernode } from './presence-network.js';
import type { Phone, Supernode } from './presence-network.js';

/**
 * Instant messages end to end over five in-process supernodes: real
 * Messengers (sealed, routed through supernodes), InstantMessages and
 * histories on disk; the supernodes hold what offline devices miss.
 */
const TEXT = 'the meeting moved to room 4';

interface Device2 {
  name: string;
  phone: Phone;
  messenger: Messenger;
  history: MessageHistory;
  im: InstantMessages;
  logText: () => string;
}

describe('instant messages between phones', () => {
  let nodes: Supernode[];
  let dir: string;
  const devices: Device2[] = [];

  /** A phone with the real pieces: attached, record published, presence set. */
  async function phone(name: string, user: string, sn: Supernode, device: Device = makeDevice(user)): Promise<Device2> {
    const p = await attachPhone(sn, user, device);
    const mem = memoryLogger('debug');
    const messenger = new Messenger({
      identity: device.identity, network: NETWORK, loginServerKey: loginServer.publicKey, credential: () => device.credential,
      link: () => p.link, search: (u) => p.link.request(NodeIndexSearch, { user: u }), log: mem.log, now: () => clock.now,
    });
    // What Messenger.serve does, keeping a copy of each delivery for the test.
    p.link.handle(RouteDeliver, (body) => {
      p.delivered.push(body);
      messenger.receive(body.from, Buffer.from(body.sealed, 'base64'));
      return { delivered: true as const };
    });
    const history = new MessageHistory({ path: join(dir, `${name}.json`), log: mem.log, saveDelayMs: 1, now: () => clock.now });
    await history.load();
    const im = new InstantMessages({ messenger, history, self: () => ({ user, deviceId: device.identity.deviceId }), log: mem.log, now: () => clock.now });
    clock.now += 10;
    const record = makeRecord(user, device, { issued: clock.now, device: { deviceId: device.identity.deviceId, supernode: sn.address, addresses: [], since: clock.now } });
    await p.link.request(NodeIndexPublish, { record: { ...record } });
    await p.link.request(PresenceSet, { update: { ...presenceOf(p, 'online') } });
    const d = { name, phone: p, messenger, history, im, logText: mem.text };
    devices.push(d);
    return d;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pl-im-'));
    nodes = await startNetwork(5);
  });

  afterAll(async () => {
    for (const d of devices) {
      d.phone.link.close();
      await d.history.flush();
    }
    for (const sn of nodes) await stopSupernode(sn);
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches every device of the recipient; receipts mark it delivered; no text in any log', async () => {
    const alice = await phone('alice', 'alice', nodes[0]!);
    const bob1 = await phone('bob1', 'bob', nodes[1]!);
    const bob2 = await phone('bob2', 'bob', nodes[3]!);
    const sent = await alice.im.send('Bob', TEXT);
    expect(sent).toMatchObject({ to: 'bob', devices: 2, delivered: 2, held: 0 });
    for (const bob of [bob1, bob2]) {
      await until(`${bob.name} to have it`, async () => bob.im.list().length === 1);
      expect(bob.im.list()).toEqual([{ id: sent.id, direction: 'in', from: 'alice', to: 'bob', time: expect.any(Number), text: TEXT, delivered: true, device: alice.phone.device.identity.deviceId }]);
    }
    await until('alice to get a receipt', async () => alice.im.list()[0]?.delivered === true);
    expect(alice.im.list()).toEqual([{ id: sent.id, direction: 'out', from: 'alice', to: 'bob', time: expect.any(Number), text: TEXT, delivered: true, held: 0 }]);
    for (const d of [alice, bob1, bob2]) {
      expect(d.logText()).toContain(sent.id);
      expect(d.logText()).not.toContain('room 4');
    }
  });

  it('holds a message for an offline device and delivers it at its next login, shown once even after a restart', async () => {
    const alice = devices[0]!;
    const carolDevice = makeDevice('carol');
    const carol = await phone('carol', 'carol', nodes[2]!, carolDevice);
    carol.phone.link.close();
    await until('carol detached', async () => !nodes[2]!.attached.has(carolDevice.identity.deviceId));
    const sent = await alice.im.send('carol', 'are you there?');
    expect(sent).toMatchObject({ devices: 1, delivered: 0, held: 1 });
    expect(alice.im.list().at(-1)).toMatchObject({ id: sent.id, delivered: false, held: 3 });
    // Carol logs in again, elsewhere: her supernode fetches what was held.
    const back = await phone('carol-again', 'carol', nodes[4]!, carolDevice);
    expect(await back.phone.link.request(MailboxFetch, {})).toEqual({ delivered: 1 });
    await until('carol to have it', async () => back.im.list().length === 1);
    expect(back.im.list()[0]).toMatchObject({ id: sent.id, from: 'alice', text: 'are you there?' });
    await until('alice to get carol\'s receipt', async () => alice.im.list().find((m) => m.id === sent.id)?.delivered === true);
    // The same sealed message again (a holder whose delete was lost), to a fresh process with the saved history: dropped.
    await back.history.flush();
    const mem = memoryLogger('debug');
    const reloaded = new MessageHistory({ path: join(dir, 'carol-again.json'), log: mem.log, now: () => clock.now });
    await reloaded.load();
    expect(reloaded.entries()).toHaveLength(1);
    const messenger = new Messenger({
      identity: carolDevice.identity, network: NETWORK, loginServerKey: loginServer.publicKey, credential: () => carolDevice.credential,
      link: () => back.phone.link, search: async () => { throw new Error('not needed'); }, log: mem.log, now: () => clock.now,
    });
    const im = new InstantMessages({ messenger, history: reloaded, self: () => ({ user: 'carol', deviceId: carolDevice.identity.deviceId }), log: mem.log, now: () => clock.now });
    const copy = back.phone.delivered[0]!;
    messenger.receive(copy.from, Buffer.from(copy.sealed, 'base64'));
    await new Promise((r) => setTimeout(r, 20));
    expect(im.list()).toHaveLength(1);
    expect(mem.text()).toContain('duplicate instant message dropped');
  });

  it('says clearly what cannot be sent', async () => {
    const alice = devices[0]!;
    await expect(alice.im.send('nobody-here', 'hello')).rejects.toMatchObject({ code: 'ERR_IM_UNKNOWN_USER' });
    await expect(alice.im.send('bob', ' ')).rejects.toMatchObject({ code: 'ERR_IM_TEXT' });
    await expect(alice.im.send('bob', 'x'.repeat(4001))).rejects.toMatchObject({ code: 'ERR_IM_TEXT' });
    await expect(alice.im.send('Not A Name', 'hello')).rejects.toMatchObject({ code: 'ERR_IM_USER' });
    // Alice alone on her account: no other device to send to.
    await expect(alice.im.send('alice', 'note to self')).rejects.toMatchObject({ code: 'ERR_IM_NO_DEVICE' });
  });
});

describe('MessageHistory on disk', () => {
  it('keeps messages and seen ids across a restart, bounded, mode 0600; a corrupt file is set aside', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-history-'));
    try {
      const path = join(dir, 'messages.json');
      const mem = memoryLogger();
      const now = { t: T0 };
      const history = new MessageHistory({ path, log: mem.log, maxMessages: 3, now: () => now.t });
      await history.load();
      for (let i = 0; i < 5; i++) history.addIncoming({ id: `m${i}`, direction: 'in', from: 'bob', to: 'alice', time: T0 + i, text: `text ${i}`, delivered: true }, `dev/m${i}`);
      history.addOutgoing({ id: 'o1', direction: 'out', from: 'alice', to: 'bob', time: T0 + 10, text: 'reply', delivered: false, held: 2 });
      expect(history.markDelivered('o1', 'carol')).toBe(false);
      expect(history.markDelivered('o1', 'bob')).toBe(true);
      await history.flush();
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const again = new MessageHistory({ path, log: mem.log, maxMessages: 3, now: () => now.t });
      await again.load();
      expect(again.entries().map((m) => m.id)).toEqual(['m3', 'm4', 'o1']);
      expect(again.entries()[2]).toMatchObject({ delivered: true, held: 2 });
      // Seen ids outlive the messages the bound dropped, for 72 h (and an hour of slack).
      expect(again.hasSeen('dev/m0')).toBe(true);
      now.t = T0 + 74 * 3_600_000;
      again.addIncoming({ id: 'm9', direction: 'in', from: 'bob', to: 'alice', time: now.t, text: 'late', delivered: true }, 'dev/m9');
      expect(again.hasSeen('dev/m0')).toBe(false);
      expect(again.hasSeen('dev/m9')).toBe(true);
      await again.flush();

      await writeFile(path, '{"version":1,"messages":[{"id":5}]}');
      const broken = new MessageHistory({ path, log: mem.log });
      await broken.load();
      expect(broken.entries()).toEqual([]);
      expect(mem.lines().some((l) => l.msg === 'message history unreadable: set aside, starting empty')).toBe(true);
      const aside = mem.lines().find((l) => l.msg === 'message history unreadable: set aside, starting empty')!.aside as string;
      expect(await readFile(aside, 'utf8')).toContain('"id":5');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
