/**
 * Conferences and the sound-test service with real processes on loopback
 * (issue "Calls and media", Tests): a three-way conference where each
 * party hears the other two (the mixer sends each the mix minus itself),
 * and a supernode box running the `echo` account that answers and plays
 * the caller's audio back after a second.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callControls } from './lab-controls.js';
import { LabNetwork, PASSWORD, portBlock } from '../helpers/network.js';
import { until } from '../helpers/until.js';
import { SPEECH, speechSimilarity, MIX_THRESHOLD, SELF_CEILING, SPEECH_THRESHOLD, CHANCE_CEILING } from './speech.js';

const port = portBlock(350);
const SN = `127.0.0.1:${port(1)}`;

describe('conference and sound test between real processes', () => {
  let lab: LabNetwork;
  const out = (name: string): string => join(lab.root, `${name}-speaker.wav`);
  const { ctl, status, callState } = callControls(() => lab);

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn1', 'echo', 'alice', 'bob', 'carol'] });
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(1), supernode: true, extra: { supernode: { policy: 'always', attachTimeoutS: 2, soundTest: { user: 'echo', password: PASSWORD } } } });
    const phone = (name: string, input: string, i: number): Promise<unknown> => lab.start(name, { port: port(10 + i), bootstrap: [SN], extra: { hal: { audio: { input, output: out(name) } } } });
    await Promise.all([phone('alice', SPEECH.a, 0), phone('bob', SPEECH.b, 1), phone('carol', SPEECH.c, 2)]);
    for (const user of ['bob', 'carol', 'echo']) {
      await until(`alice finds ${user}`, async () => ((await ctl('alice', 'search', { user })) as { devices: unknown[] }).devices.length > 0, 20_000);
    }
  }, 90_000);

  // A failed test leaves no call behind for the next one.
  afterEach(async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      if ((await callState(name)) !== null) await ctl(name, 'hangup').catch(() => undefined);
    }
    await until('no calls left', async () => (await callState('alice')) === null && (await callState('bob')) === null && (await callState('carol')) === null);
  });

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('three-way conference: each party hears the other two, not itself', async () => {
    await ctl('alice', 'call', { user: 'bob' });
    await until('bob rings', async () => (await callState('bob')) === 'ringing');
    await ctl('bob', 'answer');
    await until('alice and bob talk', async () => ((await status('alice')).call?.rtp.packetsReceived ?? 0) > 10, 10_000);
    const adding = ctl('alice', 'conference.add', { user: 'carol' });
    await until('carol rings', async () => (await callState('carol')) === 'ringing');
    await ctl('carol', 'answer');
    await adding;
    await until('carol has media', async () => ((await status('carol')).call?.rtp.packetsReceived ?? 0) > 10, 10_000);
    // The more capable of alice and bob mixes (free CPU from each one's load
    // average at the time, so either may): alice mixes, or asked bob to.
    const views = { alice: (await status('alice')).call!, bob: (await status('bob')).call! };
    const mixing = (['alice', 'bob'] as const).filter((who) => views[who].conference?.mixer === true);
    expect(mixing, `exactly one of alice and bob mixes: ${JSON.stringify(views)}`).toHaveLength(1);
    const mixer = mixing[0]!;
    const other = mixer === 'alice' ? 'bob' : 'alice';
    expect(views[mixer].conference!.parties.map((p) => p.peer).sort()).toEqual([other, 'carol'].sort());
    expect(views[other].conference ?? { mixer: false }).toMatchObject({ mixer: false });
    expect((await status('carol')).call!.conference).toMatchObject({ mixer: false });
    await new Promise((r) => setTimeout(r, 6_000));
    await ctl(mixer, 'hangup');
    await until('everyone hung up', async () => (await callState('bob')) === null && (await callState('carol')) === null && (await callState('alice')) === null);
    const heard = {
      alice: { bob: await speechSimilarity(SPEECH.b, out('alice')), carol: await speechSimilarity(SPEECH.c, out('alice')), self: await speechSimilarity(SPEECH.a, out('alice')) },
      bob: { alice: await speechSimilarity(SPEECH.a, out('bob')), carol: await speechSimilarity(SPEECH.c, out('bob')), self: await speechSimilarity(SPEECH.b, out('bob')) },
      carol: { alice: await speechSimilarity(SPEECH.a, out('carol')), bob: await speechSimilarity(SPEECH.b, out('carol')), self: await speechSimilarity(SPEECH.c, out('carol')) },
    };
    const summary = Object.fromEntries(Object.entries(heard).map(([who, h]) => [who, Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Math.round(v.match * 100) / 100]))]));
    console.log(`three-way conference, correlation of each speaker recording with each voice: ${JSON.stringify(summary)}`);
    for (const [who, h] of Object.entries(heard)) {
      for (const [source, sim] of Object.entries(h)) {
        if (source === 'self') expect(sim.match, `${who} hears itself: ${JSON.stringify(summary)}`).toBeLessThan(SELF_CEILING);
        else expect(sim.match, `${who} hears ${source}: ${JSON.stringify(summary)}`).toBeGreaterThan(MIX_THRESHOLD);
      }
    }
  }, 60_000);

  it('the sound-test account answers and plays the caller back after a second', async () => {
    const st = (await status('sn1')).soundTest;
    expect(st).toMatchObject({ user: 'echo', loggedIn: true });
    await ctl('alice', 'call', { user: 'echo' });
    await until('echo answers by itself', async () => (await callState('alice')) === 'active', 5_000);
    await until('media', async () => ((await status('alice')).call?.rtp.packetsReceived ?? 0) > 10, 10_000);
    await new Promise((r) => setTimeout(r, 6_000));
    await ctl('alice', 'hangup');
    await until('ended', async () => (await callState('alice')) === null);
    const echo = await speechSimilarity(SPEECH.a, out('alice'), { maxLagMs: 2_500 });
    console.log(`sound test: alice heard herself ${echo.match.toFixed(2)} after ${Math.round(echo.lagMs)} ms (chance ${echo.chance.toFixed(2)})`);
    expect(echo.match).toBeGreaterThan(SPEECH_THRESHOLD);
    // Played back a second later (plus the path and jitter buffer both ways).
    expect(echo.lagMs).toBeGreaterThan(950);
    expect(echo.lagMs).toBeLessThan(1_600);
    expect(echo.chance).toBeLessThan(CHANCE_CEILING);
  }, 40_000);
});
