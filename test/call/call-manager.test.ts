/**
 * The call state machine (src/call/call-manager.ts) over an in-memory
 * switchboard: forking to every device, first answer wins, busy, decline,
 * cancel before answer, no answer (missed call), hold, DTMF, conferences.
 * Real sealed routing is in test/overlay; real media in test/call/*-audio.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { Switchboard } from './switchboard.js';
import type { Phone } from './switchboard.js';

let board: Switchboard;

afterEach(async () => {
  await board?.close();
});

const state = (p: Phone): string | null => p.calls.view()?.state ?? null;

async function connected(caller: Phone, callee: Phone): Promise<void> {
  await caller.calls.call(callee.user);
  await until('callee rings', async () => state(callee) === 'ringing');
  await callee.calls.answer();
  await until('both active with media', async () => state(caller) === 'active' && state(callee) === 'active' && caller.media.at(-1)?.streams.size === 1 && callee.media.at(-1)?.streams.size === 1);
}

describe('CallManager', () => {
  it('rings the callee, connects on answer with each side\'s SRTP key, and ends for both on hangup', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    const ringing = await alice.calls.call('bob');
    expect(ringing).toMatchObject({ state: 'ringing', peer: 'bob', direction: 'outgoing', path: null });
    await until('bob rings', async () => state(bob) === 'ringing');
    expect(bob.calls.view()).toMatchObject({ state: 'ringing', peer: 'alice', direction: 'incoming' });
    const answered = await bob.calls.answer();
    expect(answered.state).toBe('active');
    await until('media on both sides', async () => alice.media[0]?.streams.size === 1 && bob.media[0]?.streams.size === 1);
    const a = [...alice.media[0]!.streams.values()][0]!.params;
    const b = [...bob.media[0]!.streams.values()][0]!.params;
    // Each side sends with its own key and opens the other's.
    expect(a.srtp.send.key.equals(b.srtp.receive.key)).toBe(true);
    expect(b.srtp.send.key.equals(a.srtp.receive.key)).toBe(true);
    expect(a.srtp.send.key.equals(b.srtp.send.key)).toBe(false);
    expect(alice.calls.view()!.path).toBe('direct-udp');
    await alice.calls.hangup();
    await until('both ended', async () => state(alice) === null && state(bob) === null);
    expect(alice.calls.history()[0]).toMatchObject({ peer: 'bob', direction: 'outgoing', outcome: 'completed', missed: false });
    expect(bob.calls.history()[0]).toMatchObject({ peer: 'alice', direction: 'incoming', outcome: 'completed', missed: false });
    await until('media engines closed', async () => alice.media[0]!.closed && bob.media[0]!.closed);
  });

  it('rings all of the callee\'s devices; the first to answer wins and the others stop ringing', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const desk = board.add('carol', 'carol-desk');
    const kitchen = board.add('carol', 'carol-kitchen');
    await alice.calls.call('carol');
    await until('both devices ring', async () => state(desk) === 'ringing' && state(kitchen) === 'ringing');
    await kitchen.calls.answer();
    await until('the desk stops ringing', async () => state(desk) === null);
    expect(desk.calls.history()[0]).toMatchObject({ outcome: 'answered-elsewhere', missed: false });
    expect(state(kitchen)).toBe('active');
    // A late answer on the other device is refused.
    await expect(desk.calls.answer()).rejects.toMatchObject({ code: 'ERR_NO_CALL' });
    await kitchen.calls.hangup();
    await until('alice ended', async () => state(alice) === null);
  });

  it('a late answer from a second device, after the first won, is turned away', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const desk = board.add('carol', 'carol-desk');
    const kitchen = board.add('carol', 'carol-kitchen');
    board.drop.add('call.cancel'); // the desk never hears that the kitchen answered
    await alice.calls.call('carol');
    await until('both ring', async () => state(desk) === 'ringing' && state(kitchen) === 'ringing');
    await kitchen.calls.answer();
    await expect(desk.calls.answer()).rejects.toMatchObject({ code: 'ERR_CALL_GONE', message: 'answered on another device' });
    expect(state(desk)).toBeNull();
    expect(state(kitchen)).toBe('active');
  });

  it('says busy when every device of the callee is in a call', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    const dave = board.add('dave');
    await connected(alice, bob);
    await expect(dave.calls.call('bob')).rejects.toMatchObject({ code: 'ERR_USER_BUSY', message: 'bob is busy' });
    expect(state(dave)).toBeNull();
    expect(dave.calls.history()[0]).toMatchObject({ outcome: 'busy' });
    expect(bob.calls.history()[0]).toMatchObject({ peer: 'dave', outcome: 'busy', missed: true });
    expect(state(bob)).toBe('active');
  });

  it('a decline on the callee ends the call for the caller and stops the other devices', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const desk = board.add('carol', 'carol-desk');
    const kitchen = board.add('carol', 'carol-kitchen');
    await alice.calls.call('carol');
    await until('both ring', async () => state(desk) === 'ringing' && state(kitchen) === 'ringing');
    await desk.calls.hangup();
    await until('everyone ended', async () => state(alice) === null && state(kitchen) === null && state(desk) === null);
    expect(alice.calls.history()[0]).toMatchObject({ outcome: 'declined' });
    expect(desk.calls.history()[0]).toMatchObject({ outcome: 'declined', missed: false });
    expect(kitchen.calls.history()[0]).toMatchObject({ outcome: 'declined' });
  });

  it('cancel before answer stops the ringing and leaves a missed call', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    await alice.calls.call('bob');
    await until('bob rings', async () => state(bob) === 'ringing');
    await alice.calls.hangup();
    await until('bob stops ringing', async () => state(bob) === null);
    expect(alice.calls.history()[0]).toMatchObject({ outcome: 'cancelled' });
    expect(bob.calls.history()[0]).toMatchObject({ peer: 'alice', outcome: 'missed', missed: true });
    await expect(bob.calls.answer()).rejects.toMatchObject({ code: 'ERR_NO_CALL' });
  });

  it('no answer within the ring timeout ends the call: no-answer for the caller, missed for the callee', async () => {
    board = new Switchboard();
    const alice = board.add('alice', undefined, { ringTimeoutS: () => 1 });
    const bob = board.add('bob');
    await alice.calls.call('bob');
    await until('bob rings', async () => state(bob) === 'ringing');
    await until('the call gives up', async () => state(alice) === null && state(bob) === null, 4_000);
    expect(alice.calls.history()[0]).toMatchObject({ outcome: 'no-answer', reason: 'no answer within 1 s' });
    expect(bob.calls.history()[0]).toMatchObject({ outcome: 'missed', missed: true });
  });

  it('gives a clear outcome for an unknown user, an offline one, and one that does not answer the invite', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    await expect(alice.calls.call('nobody')).rejects.toMatchObject({ code: 'ERR_NO_SUCH_USER', message: 'no such user: nobody' });
    board.offline.add('erin');
    await expect(alice.calls.call('erin')).rejects.toMatchObject({ code: 'ERR_USER_OFFLINE', message: 'erin is offline' });
    const frozen = board.add('frank');
    board.drop.add('call.invite');
    await expect(alice.calls.call('frank')).rejects.toMatchObject({ code: 'ERR_USER_UNREACHABLE' });
    expect(state(frozen)).toBeNull();
    expect(state(alice)).toBeNull();
    // And a second call while one is going is refused here.
    board.drop.clear();
    const bob = board.add('bob');
    await connected(alice, bob);
    await expect(alice.calls.call('frank')).rejects.toMatchObject({ code: 'ERR_IN_CALL' });
  }, 15_000);

  it('holds and resumes: both sides show held, media is told, only the holder resumes', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    await connected(alice, bob);
    await alice.calls.hold(true);
    await until('bob sees the hold', async () => state(bob) === 'held');
    expect(alice.calls.view()).toMatchObject({ state: 'held', held: 'local' });
    expect(bob.calls.view()).toMatchObject({ state: 'held', held: 'remote' });
    expect([...alice.media[0]!.streams.values()][0]!.held).toBe(true);
    expect([...bob.media[0]!.streams.values()][0]!.held).toBe(true);
    await expect(bob.calls.hold(false)).rejects.toMatchObject({ code: 'ERR_NOT_HELD' });
    await alice.calls.hold(false);
    await until('both active again', async () => state(alice) === 'active' && state(bob) === 'active');
    expect([...bob.media[0]!.streams.values()][0]!.held).toBe(false);
  });

  it('passes DTMF digits to the engine and shows the digits the other side sent', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    await connected(alice, bob);
    await alice.calls.dtmf('12#');
    await until('bob got the digits', async () => bob.calls.view()?.dtmfReceived === '12#');
  });

  it('adds a third party: the mixer gets a second stream, and the view lists the parties', async () => {
    board = new Switchboard();
    const alice = board.add('alice', undefined, { capabilities: () => ({ cores: 4, load: 0, publicAddress: true, kbps: 0 }) });
    const bob = board.add('bob');
    const carol = board.add('carol', undefined, { autoAnswerMs: 0 });
    await connected(alice, bob);
    const view = await alice.calls.conferenceAdd('carol');
    expect(view.conference?.parties.map((p) => p.peer)).toEqual(['bob', 'carol']);
    await until('carol in the call', async () => state(carol) === 'active' && alice.media[0]!.streams.size === 2);
    expect(alice.calls.view()!.conference).toMatchObject({ mixer: true });
    expect(carol.calls.view()!.conference).toMatchObject({ mixer: false });
    await expect(alice.calls.conferenceAdd('carol')).rejects.toMatchObject({ code: 'ERR_IN_CONFERENCE' });
    await alice.calls.hangup();
    await until('all ended', async () => state(bob) === null && state(carol) === null);
  });

  it('a less capable party asks the more capable one to mix', async () => {
    board = new Switchboard();
    const weak = board.add('alice', undefined, { capabilities: () => ({ cores: 1, load: 0.9, publicAddress: false, kbps: 0 }) });
    const strong = board.add('bob', undefined, { capabilities: () => ({ cores: 4, load: 0, publicAddress: true, kbps: 0 }) });
    const carol = board.add('carol', undefined, { autoAnswerMs: 0 });
    await connected(weak, strong);
    await weak.calls.conferenceAdd('carol');
    await until('bob mixes carol in', async () => state(carol) === 'active' && strong.media[0]!.streams.size === 2);
    expect(weak.media[0]!.streams.size).toBe(1);
    expect(weak.calls.view()!.conference).toMatchObject({ mixer: false });
    expect(strong.calls.view()!.conference?.parties.map((p) => p.peer)).toEqual(['alice', 'carol']);
  });

  it('mixes itself when the other party is only a little more capable (figures from different moments)', async () => {
    board = new Switchboard();
    const alice = board.add('alice', undefined, { capabilities: () => ({ cores: 2, load: 0.4, publicAddress: false, kbps: 0 }) });
    const bob = board.add('bob', undefined, { capabilities: () => ({ cores: 2, load: 0.2, publicAddress: false, kbps: 0 }) });
    const carol = board.add('carol', undefined, { autoAnswerMs: 0 });
    await connected(alice, bob);
    await alice.calls.conferenceAdd('carol');
    await until('alice mixes carol in', async () => state(carol) === 'active' && alice.media[0]!.streams.size === 2);
    expect(alice.calls.view()!.conference).toMatchObject({ mixer: true });
    expect(bob.media[0]!.streams.size).toBe(1);
  });

  it('ignores malformed and foreign call messages and keeps serving', async () => {
    board = new Switchboard();
    const alice = board.add('alice');
    const bob = board.add('bob');
    const mallory = board.add('mallory');
    await mallory.send(bob.device, { type: 'call.invite', body: { call: 'x' } });
    await mallory.send(bob.device, { type: 'call.invite', body: 'nonsense' });
    await connected(alice, bob);
    const id = alice.calls.view()!.id;
    // Someone else cannot end or hold a call they are not in.
    await mallory.send(bob.device, { type: 'call.bye', body: { call: id } });
    await mallory.send(bob.device, { type: 'call.hold', body: { call: id, held: true } });
    await new Promise((r) => setTimeout(r, 50));
    expect(state(bob)).toBe('active');
  });
});
