/**
 * The embedded broker on a supernode box (provisioning.broker) announced
 * on mDNS as _mqtt._tcp, and a phone with no provisioning.mqtt.url that
 * finds it on the LAN and comes online on it — real processes, real
 * multicast DNS on this machine's interface.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import type { LabNode } from '../helpers/network.js';
import { until } from '../helpers/until.js';
import { MqttProbe } from './mqtt-probe.js';

const port = portBlock(150);
const BROKER_PORT = port(40);

describe('embedded broker found by mDNS', () => {
  let lab: LabNetwork;
  let box: LabNode;
  let phone: LabNode;
  const status = async (node: LabNode): Promise<NodeStatus> => (await callControl(node.control, 'status', {}, { timeoutMs: 10_000 })) as NodeStatus;

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(41), users: [] });
    const mdns = { network: { name: lab.network, mdns: true, bootstrap: [] } };
    box = await lab.start('box', { port: port(42), extra: { ...mdns, account: {}, provisioning: { broker: { enabled: true, port: BROKER_PORT, username: 'lan', password: 'lan-broker-pw' } } } });
    phone = await lab.start('phone', { port: port(43), extra: { ...mdns, account: {}, provisioning: { mqtt: { username: 'lan', password: 'lan-broker-pw' } } } });
  }, 30_000);

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('the phone finds the box\'s broker on the LAN, connects with the broker\'s user and publishes its status', async () => {
    const found = await phone.proc.waitFor((l) => l.msg === 'MQTT broker found on the LAN (mDNS)', 15_000);
    expect(found.broker).toMatch(new RegExp(`^mqtt://[0-9.]+:${BROKER_PORT}$`));
    const deviceId = (await status(phone)).deviceId;
    await until('the phone is connected', async () => (await status(phone)).provisioning?.connected === true, 10_000);
    const online = await MqttProbe.retained(`mqtt://127.0.0.1:${BROKER_PORT}`, `partyline/${deviceId}/status`, { username: 'lan', password: 'lan-broker-pw' });
    expect(online).toMatchObject({ text: 'online', retain: true });
    // The box runs its own agent on its broker too.
    expect((await status(box)).provisioning).toMatchObject({ broker: `mqtt://127.0.0.1:${BROKER_PORT}`, connected: true });
  }, 30_000);

  it('the embedded broker refuses clients without its user name and password', async () => {
    await expect(MqttProbe.connect(`mqtt://127.0.0.1:${BROKER_PORT}`, 'partyline/#', { reconnectPeriod: 0, username: 'lan', password: 'wrong' })).rejects.toThrow(/Not authorized|Bad username or password/i);
  });
});
