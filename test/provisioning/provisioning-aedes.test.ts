/**
 * Provisioning over MQTT between real processes (issue 9, Tests), against
 * an in-process broker (aedes, the embedded broker of src/provisioning):
 * a login server, a supernode and phones as `partyline start` processes;
 * the operator is an MQTT client in this process. The same scenarios
 * against a real Mosquitto are in provisioning-mosquitto.test.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { EmbeddedBroker } from '../../src/provisioning/embedded-broker.js';
import { silentLogger } from '../../src/system/logging.js';
import { LabNetwork, PASSWORD, portBlock } from '../helpers/network.js';
import type { LabNode } from '../helpers/network.js';
import { until } from '../helpers/until.js';
import { MqttProbe } from './mqtt-probe.js';
import type { Seen } from './mqtt-probe.js';

const port = portBlock(150);
const SN = `127.0.0.1:${port(1)}`;
const BROKER = `mqtt://127.0.0.1:${port(2)}`;

type Report = { version: unknown; status: string; errors: string[]; at: string };

describe('provisioning over MQTT (in-process broker)', () => {
  let lab: LabNetwork;
  let broker: EmbeddedBroker;
  let probe: MqttProbe;
  let alice: LabNode;
  let base = '';
  const ctl = (node: LabNode, command: string, args: Record<string, unknown> = {}): Promise<unknown> => callControl(node.control, command, args, { timeoutMs: 10_000 });
  const status = (node: LabNode): Promise<NodeStatus> => ctl(node, 'status') as Promise<NodeStatus>;
  const isReport = (version: unknown) => (m: Seen): boolean => m.topic === `${base}/config/reported` && (JSON.parse(m.text) as Report).version === version;
  const desire = (version: unknown, config: unknown): Promise<void> => probe.publish(`${base}/config/desired`, JSON.stringify({ version, config }), true);

  beforeAll(async () => {
    broker = new EmbeddedBroker({ listen: '127.0.0.1', port: port(2), log: silentLogger() });
    await broker.start();
    probe = await MqttProbe.connect(BROKER, 'partyline/#');
    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn1', 'alice', 'bob'] });
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(1), supernode: true });
    // No account: the phone waits for provisioning, with the broker in its own file.
    alice = await lab.start('alice', {
      port: port(10),
      bootstrap: [SN],
      extra: { account: {}, provisioning: { mqtt: { url: BROKER }, loginTimeoutS: 4, telemetryS: 1 } },
    });
    base = `partyline/${(await status(alice)).deviceId}`;
  }, 60_000);

  afterAll(async () => {
    await probe?.close();
    await lab?.stopAll();
    await broker?.stop();
  });

  it('an unprovisioned phone publishes status and info, answers ctl status with its deviceId and loggedIn false, and blinks "awaiting provisioning"', async () => {
    const s = await status(alice);
    expect(s).toMatchObject({ loggedIn: false, user: null, overlay: { state: 'awaiting-provisioning' }, leds: { power: 'blink-slow' } });
    expect(s.deviceId).toMatch(/^[a-z2-7]{16}$/);
    expect(s.provisioning).toMatchObject({ broker: BROKER, connected: true, applied: null });
    expect(await MqttProbe.retained(BROKER, `${base}/status`)).toMatchObject({ text: 'online', retain: true });
    const info = JSON.parse((await MqttProbe.retained(BROKER, `${base}/info`))?.text ?? 'null') as Record<string, unknown>;
    expect(info).toMatchObject({ deviceId: s.deviceId, role: 'ordinary', loggedIn: false, port: port(10), config: { applied: null, pending: null }, nat: { type: 'unknown' } });
    expect(info.firmware).toMatch(/^\d+\.\d+\.\d+/);
    const telemetry = JSON.parse((await probe.next((m) => m.topic === `${base}/telemetry`, 5000)).text) as Record<string, unknown>;
    expect(telemetry).toMatchObject({ role: 'ordinary', loggedIn: false, supernode: null, call: null });
    expect(telemetry.memory).toMatchObject({ processRssMb: expect.any(Number) as number });
    expect((telemetry.memory as { processRssMb: number }).processRssMb).toBeGreaterThan(10);
  });

  it('an invalid desired configuration is rejected with every problem by path, and the phone is unchanged', async () => {
    const before = await status(alice);
    await desire(1, { account: { user: 'no spaces allowed' }, phone: { extensions: { abc: 'bob' } }, netwrok: {}, node: { stateDir: '/elsewhere' } });
    const report = JSON.parse((await probe.waitFor(isReport(1))).text) as Report;
    expect(report.status).toBe('rejected');
    expect(report.errors.join('\n')).toMatch(/^account\.user: expected a user name/m);
    expect(report.errors.join('\n')).toMatch(/^phone\.extensions\.abc: expected a key of digits only/m);
    expect(report.errors.join('\n')).toMatch(/^netwrok: expected one of the keys/m);
    expect(report.errors.join('\n')).toMatch(/^node\.stateDir: expected no node\.stateDir in a provisioned overlay/m);
    // Malformed JSON: a clear rejection, and the agent keeps serving.
    await probe.publish(`${base}/config/desired`, '{"version": 2, "config": ', true);
    const bad = JSON.parse((await probe.waitFor((m) => m.topic === `${base}/config/reported` && (JSON.parse(m.text) as Report).version === null)).text) as Report;
    expect(bad).toMatchObject({ status: 'rejected' });
    expect(bad.errors[0]).toMatch(/^config\/desired: expected a JSON object, got text that is not JSON/);
    const after = await status(alice);
    expect(after).toMatchObject({ loggedIn: false, user: null, provisioning: { applied: null } });
    // Not restarted: the same process and node, still counting up.
    expect(after.uptimeS).toBeGreaterThanOrEqual(before.uptimeS);
    await expect(stat(join(alice.dir, 'provisioned.yaml'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('provisioning an account: the phone applies it, persists it (0600), logs in and reports applied; no secret echoed', async () => {
    const started = performance.now();
    await desire(2, { account: { user: 'alice', password: PASSWORD }, phone: { extensions: { '201': 'alice', '202': 'bob' } } });
    const report = JSON.parse((await probe.waitFor(isReport(2), 15_000)).text) as Report;
    const ms = performance.now() - started;
    console.log(`provisioned → logged in and reported applied: ${Math.round(ms)} ms (aedes, loopback)`);
    expect(report).toMatchObject({ status: 'applied', errors: [] });
    const s = await status(alice);
    expect(s).toMatchObject({ loggedIn: true, user: 'alice', provisioning: { applied: 2, pending: null } });
    expect(s.leds?.power).toBe('on');
    const file = join(alice.dir, 'provisioned.yaml');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toContain('user: alice');
    const info = JSON.parse((await probe.waitFor((m) => m.topic === `${base}/info` && (JSON.parse(m.text) as { config: { applied: unknown } }).config.applied === 2)).text) as Record<string, unknown>;
    expect(info).toMatchObject({ user: 'alice', loggedIn: true });
    // The password is in no report, no info, and no log line.
    const published = probe.seen.filter((m) => !m.topic.endsWith('/config/desired')).map((m) => m.text).join('\n');
    expect(published).not.toContain(PASSWORD);
    expect(alice.proc.lines.map((l) => JSON.stringify(l)).join('\n')).not.toContain(PASSWORD);
  }, 20_000);

  it('the same version again changes nothing', async () => {
    const uptime = (await status(alice)).uptimeS;
    const reports = probe.seen.filter(isReport(2)).length;
    await desire(2, { account: { user: 'alice', password: PASSWORD }, phone: { extensions: { '201': 'alice', '202': 'bob' } } });
    await alice.proc.waitFor((l) => l.msg === 'desired configuration unchanged' && l.version === 2, 5000);
    await new Promise((r) => setTimeout(r, 500));
    expect(probe.seen.filter(isReport(2)).length).toBe(reports);
    const s = await status(alice);
    expect(s.uptimeS).toBeGreaterThanOrEqual(uptime);
    expect(s).toMatchObject({ loggedIn: true, user: 'alice' });
  });

  it('a new account with a wrong password is rolled back: reported rolled-back with the reason, still logged in as alice', async () => {
    await desire(3, { account: { user: 'bob', password: 'not-bobs-password' } });
    const report = JSON.parse((await probe.waitFor(isReport(3), 20_000)).text) as Report;
    expect(report.status).toBe('rolled-back');
    expect(report.errors[0]).toMatch(/^did not log in within 4 s/);
    expect(JSON.stringify(report)).not.toContain('not-bobs-password');
    await until('alice is logged in again', async () => {
      const s = await status(alice);
      return s.loggedIn && s.user === 'alice';
    }, 10_000);
    expect((await status(alice)).provisioning).toMatchObject({ applied: 2, pending: null });
    expect(await readFile(join(alice.dir, 'provisioned.yaml'), 'utf8')).toContain('user: alice');
    expect(alice.proc.lines.map((l) => JSON.stringify(l)).join('\n')).not.toContain('not-bobs-password');
  }, 30_000);

  it('commands answer on cmd/<name>/response with the correlation id, errors included', async () => {
    const s = await probe.command(base, 'status');
    expect(s).toMatchObject({ ok: true, result: { user: 'alice', loggedIn: true } });
    const level = await probe.command(base, 'log-level', { level: 'debug', component: 'overlay' });
    expect(level).toMatchObject({ ok: true, result: { level: 'debug', component: 'overlay' } });
    expect((level.result as { loggers: number }).loggers).toBeGreaterThan(0);
    const bad = await probe.command(base, 'call', { who: 'bob' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_ARGS' } });
    const unknown = await probe.command(base, 'format-disk');
    expect(unknown).toMatchObject({ ok: false, error: { code: 'ERR_PROVISIONING_PAYLOAD' } });
    expect(unknown.error?.message).toMatch(/unknown command "format-disk"; available: call, hangup, reboot, log-level, status/);
    // Malformed JSON with no id: an error response with id null, and the next command is served.
    const noId = probe.next((m) => m.topic === `${base}/cmd/status/response` && (JSON.parse(m.text) as { id: unknown }).id === null);
    await probe.publish(`${base}/cmd/status`, 'not json');
    expect(JSON.parse((await noId).text)).toMatchObject({ ok: false, error: { code: 'ERR_PROVISIONING_PAYLOAD' } });
    const hangup = await probe.command(base, 'hangup');
    expect(hangup).toMatchObject({ ok: false, error: { code: expect.stringMatching(/^ERR_/) as string } });
    // Reboot: the node restarts in the process, logs in again, and the MQTT connection stays.
    const before = (await status(alice)).uptimeS;
    const reboot = await probe.command(base, 'reboot');
    expect(reboot).toMatchObject({ ok: true, result: { restarting: true } });
    await alice.proc.waitFor((l) => l.msg === 'reboot requested over MQTT: restarting the node', 5000);
    await until('alice back after the reboot', async () => {
      const after = await status(alice);
      return after.loggedIn && after.uptimeS <= before;
    }, 10_000);
  }, 30_000);

  it('a configuration pushed during a call is applied after hang-up; hook and call events are published', async () => {
    const bob = await lab.start('bob', { port: port(11), bootstrap: [SN] });
    await until('bob finds alice', async () => ((await ctl(bob, 'search', { user: 'alice' })) as { devices: unknown[] }).devices.length > 0, 15_000);
    await ctl(bob, 'call', { user: 'alice' });
    await until('alice rings', async () => (await status(alice)).call?.state === 'ringing');
    await ctl(alice, 'hook', { state: 'off' });
    await until('in a call', async () => (await status(alice)).call?.state === 'active', 10_000);
    await probe.waitFor((m) => m.topic === `${base}/event/hook` && (JSON.parse(m.text) as { state: string }).state === 'off');
    await probe.waitFor((m) => m.topic === `${base}/event/call` && (JSON.parse(m.text) as { state: string }).state === 'active');
    await desire(4, { account: { user: 'alice', password: PASSWORD }, phone: { extensions: { '201': 'alice', '202': 'bob', '300': 'bob' } } });
    await alice.proc.waitFor((l) => l.msg === 'desired configuration waits until the phone is idle' && l.version === 4, 5000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(probe.seen.some(isReport(4))).toBe(false);
    expect((await status(alice)).call?.state).toBe('active');
    expect((await status(alice)).provisioning).toMatchObject({ applied: 2, pending: 4 });
    const hungUp = performance.now();
    await ctl(alice, 'hook', { state: 'on' });
    const report = JSON.parse((await probe.waitFor(isReport(4), 15_000)).text) as Report;
    console.log(`hang-up → configuration applied and reported: ${Math.round(performance.now() - hungUp)} ms`);
    expect(report.status).toBe('applied');
    await probe.waitFor((m) => m.topic === `${base}/event/call` && (JSON.parse(m.text) as { state: string }).state === 'idle');
    await until('alice logged in with version 4', async () => {
      const s = await status(alice);
      return s.loggedIn && (s.provisioning as { applied: unknown }).applied === 4;
    });
  }, 40_000);

  it('a broker restart: the phone reconnects and republishes its retained status, info and report', async () => {
    await broker.stop();
    broker = new EmbeddedBroker({ listen: '127.0.0.1', port: port(2), log: silentLogger() });
    await broker.start();
    // The new broker has no retained messages: a fresh subscriber sees only what the phone published again.
    const fresh = await MqttProbe.connect(BROKER, `${base}/#`);
    try {
      await fresh.waitFor((m) => m.topic === `${base}/status` && m.text === 'online', 10_000);
      const info = JSON.parse((await fresh.waitFor((m) => m.topic === `${base}/info`)).text) as Record<string, unknown>;
      expect(info).toMatchObject({ user: 'alice', config: { applied: 4 } });
      const report = JSON.parse((await fresh.waitFor((m) => m.topic === `${base}/config/reported`)).text) as Report;
      expect(report).toMatchObject({ version: 4, status: 'applied' });
      expect((await status(alice)).provisioning).toMatchObject({ connected: true });
      // Commands are served on the new connection.
      expect(await fresh.command(base, 'status')).toMatchObject({ ok: true, result: { user: 'alice' } });
    } finally {
      await fresh.close();
    }
    await until('the operator client is back too', async () => probe.connected, 10_000);
  }, 30_000);

  it('the last will says offline when the phone process is killed', async () => {
    const offline = probe.next((m) => m.topic === `${base}/status` && m.text === 'offline', 10_000, 'the last will');
    await alice.proc.stop('SIGKILL');
    await offline;
    // Retained: whoever subscribes later learns the phone is offline.
    expect(await MqttProbe.retained(BROKER, `${base}/status`)).toMatchObject({ text: 'offline', retain: true });
  });
});
