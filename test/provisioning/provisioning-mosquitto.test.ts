/**
 * Provisioning over MQTT against a real Mosquitto (issue 9, Tests): the
 * phone connects over TLS (mqtts://, its CA file) with its own user,
 * confined by the repository's ACL (config/mosquitto/partyline.acl); the
 * operator uses `partyline provision` and the third-party mosquitto_pub /
 * mosquitto_sub clients on the documented topics.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { loadOrCreateIdentity } from '../../src/crypto/identity.js';
import { LabNetwork, PASSWORD, portBlock } from '../helpers/network.js';
import type { LabNode } from '../helpers/network.js';
import { CLI } from '../helpers/process.js';
import { until } from '../helpers/until.js';
import { Mosquitto, makeCertificates, mosquittoPub, mosquittoSub, startMosquittoSub } from './mosquitto.js';

const run = promisify(execFile);
const port = portBlock(150);
const SN = `127.0.0.1:${port(21)}`;
const MQTT_PORT = port(23);
const MQTTS_PORT = port(24);
const ADMIN = 'partyline-admin';
const ADMIN_PW = 'admin-secret-pw';
const PHONE_PW = 'phone-secret-pw';

describe('provisioning over MQTT (real Mosquitto, TLS, ACL)', () => {
  let lab: LabNetwork;
  let mosquitto: Mosquitto;
  let carol: LabNode;
  let deviceId = '';
  let base = '';
  let dir = '';
  const status = async (): Promise<NodeStatus> => (await callControl(carol.control, 'status', {}, { timeoutMs: 10_000 })) as NodeStatus;
  const retained = async (topic: string, user = ADMIN, password = ADMIN_PW): Promise<string | undefined> => (await mosquittoSub(MQTT_PORT, user, password, [topic], { count: 1, waitS: 1 }))[0]?.text;
  const provision = async (file: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, 'provision', deviceId, '--broker', `mqtt://127.0.0.1:${MQTT_PORT}`, '--username', ADMIN, '--file', file, ...extra], { env: { ...process.env, PARTYLINE_MQTT_PASSWORD: ADMIN_PW } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(20), users: ['sn1', 'carol', 'dave'] });
    dir = await mkdtemp(join(tmpdir(), 'pl-mosquitto-'));
    // The phone's identity first: its device id is its MQTT user name.
    await mkdir(join(lab.root, 'carol'), { recursive: true });
    deviceId = (await loadOrCreateIdentity(join(lab.root, 'carol'))).identity.deviceId;
    base = `partyline/${deviceId}`;
    mosquitto = await Mosquitto.configure(dir, { port: MQTT_PORT, tlsPort: MQTTS_PORT, users: { [ADMIN]: ADMIN_PW, [deviceId]: PHONE_PW, otherphone: PHONE_PW }, tls: await makeCertificates(dir) });
    await mosquitto.start();
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(21), supernode: true });
    carol = await lab.start('carol', {
      port: port(30),
      bootstrap: [SN],
      extra: { account: {}, provisioning: { mqtt: { url: `mqtts://localhost:${MQTTS_PORT}`, username: deviceId, password: PHONE_PW, caFile: join(dir, 'ca.pem') }, loginTimeoutS: 4, telemetryS: 0 } },
    });
    await carol.proc.waitFor((l) => l.msg === 'MQTT connected', 10_000);
  }, 60_000);

  afterAll(async () => {
    await lab?.stopAll();
    await mosquitto?.stop();
  });

  it('mosquitto_sub sees the retained status and info of an unprovisioned phone connected over TLS with its own user', async () => {
    expect(await retained(`${base}/status`)).toBe('online');
    const info = JSON.parse((await retained(`${base}/info`)) ?? 'null') as Record<string, unknown>;
    expect(info).toMatchObject({ deviceId, loggedIn: false, user: null, role: 'ordinary' });
    expect(await status()).toMatchObject({ deviceId, loggedIn: false, provisioning: { broker: `mqtts://localhost:${MQTTS_PORT}`, connected: true } });
  });

  it('partyline provision checks the file first: an invalid one is not published', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'account:\n  user: carol\n  password: x\nphone:\n  toneCountry: mars\n');
    const result = await provision(file, ['--wait', '5']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: not published: 1 problem`);
    expect(result.stderr).toContain(`${file}:5:16: phone.toneCountry: expected us, eu or uk, got "mars"`);
    expect(await retained(`${base}/config/desired`)).toBeUndefined();
  });

  it('partyline provision --wait: the phone applies the configuration, logs in, and the command prints the report', async () => {
    const file = join(dir, 'carol.yaml');
    await writeFile(file, stringify({ account: { user: 'carol', password: PASSWORD }, phone: { extensions: { '100': 'carol', '101': 'dave' } } }));
    const started = performance.now();
    const result = await provision(file, ['--wait', '20']);
    console.log(`partyline provision --wait → applied (Mosquitto, TLS): ${Math.round(performance.now() - started)} ms including the CLI's start`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^published version [0-9a-f]{12} to partyline\/\S+\/config\/desired\napplied version [0-9a-f]{12} at \S+\n$/);
    expect(await status()).toMatchObject({ loggedIn: true, user: 'carol' });
    const reported = JSON.parse((await retained(`${base}/config/reported`)) ?? 'null') as Record<string, unknown>;
    expect(reported).toMatchObject({ status: 'applied', errors: [] });
    // The same file again: the same version, nothing changes, the retained report answers.
    const again = await provision(file, ['--wait', '5', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ version: reported.version, status: 'applied', at: reported.at });
    await carol.proc.waitFor((l) => l.msg === 'desired configuration unchanged', 5000);
  }, 30_000);

  it('an invalid configuration published with mosquitto_pub is rejected with its paths; the phone is unchanged', async () => {
    const sub = await startMosquittoSub(MQTT_PORT, ADMIN, ADMIN_PW, [`${base}/config/reported`]);
    try {
      await mosquittoPub(MQTT_PORT, ADMIN, ADMIN_PW, `${base}/config/desired`, JSON.stringify({ version: 'bad-1', config: { calls: { bitrate: 5 }, phone: { interDigitTimeoutMs: 'soon' } } }), true);
      const report = JSON.parse((await sub.waitFor((m) => m.text.includes('"bad-1"'))).text) as { status: string; errors: string[] };
      expect(report.status).toBe('rejected');
      expect([...report.errors].sort()).toEqual(['calls.bitrate: expected an integer 6000..510000, got 5', 'phone.interDigitTimeoutMs: expected an integer 500..60000, got "soon"']);
    } finally {
      sub.stop();
    }
    expect(await status()).toMatchObject({ loggedIn: true, user: 'carol', provisioning: { pending: null } });
  });

  it('a wrong password is rolled back: provision --wait prints rolled-back with the reason, the phone is still carol', async () => {
    const file = join(dir, 'wrong.yaml');
    await writeFile(file, stringify({ account: { user: 'dave', password: 'not-daves-password' } }));
    const result = await provision(file, ['--wait', '20']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/\nrolled-back version [0-9a-f]{12} at \S+\n {2}did not log in within 4 s/);
    expect(result.stdout).not.toContain('not-daves-password');
    await until('carol logged in again', async () => {
      const s = await status();
      return s.loggedIn && s.user === 'carol';
    }, 10_000);
  }, 30_000);

  it('commands published with mosquitto_pub are answered on the response topic with the correlation id', async () => {
    const sub = await startMosquittoSub(MQTT_PORT, ADMIN, ADMIN_PW, [`${base}/cmd/+/response`]);
    try {
      await mosquittoPub(MQTT_PORT, ADMIN, ADMIN_PW, `${base}/cmd/status`, '{"id":"req-17"}');
      await mosquittoPub(MQTT_PORT, ADMIN, ADMIN_PW, `${base}/cmd/call`, '{"id":"req-18","args":{"user":""}}');
      const ok = await sub.waitFor((m) => m.text.includes('"req-17"'));
      expect(ok.topic).toBe(`${base}/cmd/status/response`);
      expect(JSON.parse(ok.text)).toMatchObject({ id: 'req-17', ok: true, result: { deviceId, user: 'carol', loggedIn: true } });
      const failed = await sub.waitFor((m) => m.text.includes('"req-18"'));
      expect(failed.topic).toBe(`${base}/cmd/call/response`);
      expect(JSON.parse(failed.text)).toMatchObject({ id: 'req-18', ok: false, error: { code: 'ERR_CONTROL_ARGS' } });
    } finally {
      sub.stop();
    }
  });

  it('the ACL confines a phone to its own subtree', async () => {
    // Another phone's user cannot provision carol, nor read her topics; carol cannot provision herself.
    const before = JSON.parse((await retained(`${base}/config/desired`)) ?? 'null') as { version: string };
    await mosquittoPub(MQTT_PORT, 'otherphone', PHONE_PW, `${base}/config/desired`, JSON.stringify({ version: 'evil', config: { account: { user: 'dave' } } }), true);
    await mosquittoPub(MQTT_PORT, deviceId, PHONE_PW, `${base}/config/desired`, JSON.stringify({ version: 'self', config: {} }), true);
    const desired = JSON.parse((await retained(`${base}/config/desired`)) ?? 'null') as { version: string };
    expect(desired.version).toBe(before.version);
    expect(await retained(`${base}/status`, 'otherphone', PHONE_PW)).toBeUndefined();
    expect(await retained(`${base}/status`, deviceId, PHONE_PW)).toBeUndefined();
    expect(await retained(`${base}/config/desired`, deviceId, PHONE_PW)).toContain(before.version);
  });

  it('a broker restart: the phone reconnects and republishes status and info', async () => {
    await mosquitto.stop();
    await mosquitto.start();
    // persistence false: the new broker knows nothing retained until the phone publishes it again.
    await until('status online retained again', async () => (await retained(`${base}/status`)) === 'online', 15_000, 250);
    const info = JSON.parse((await retained(`${base}/info`)) ?? 'null') as Record<string, unknown>;
    expect(info).toMatchObject({ deviceId, user: 'carol', loggedIn: true });
    expect(JSON.parse((await retained(`${base}/config/reported`)) ?? 'null')).toMatchObject({ status: 'rolled-back' });
  }, 30_000);

  it('the last will: mosquitto_sub sees offline when the phone process is SIGKILLed', async () => {
    const sub = await startMosquittoSub(MQTT_PORT, ADMIN, ADMIN_PW, [`${base}/status`]);
    try {
      await sub.waitFor((m) => m.text === 'online');
      await carol.proc.stop('SIGKILL');
      await sub.waitFor((m) => m.text === 'offline', 10_000);
    } finally {
      sub.stop();
    }
    expect(await retained(`${base}/status`)).toBe('offline');
  });
});
