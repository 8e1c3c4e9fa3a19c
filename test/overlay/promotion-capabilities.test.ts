import { describe, expect, it } from 'vitest';
import { interfaceWithAddress, ipOf, isOwnAddress, SystemCapabilitySource } from '../../src/overlay/promotion/capabilities.js';
import type { Capabilities, CapabilitySource, InterfaceFacts } from '../../src/overlay/promotion/capabilities.js';

const lo: InterfaceFacts = { name: 'lo', addresses: ['127.0.0.1', '::1'], internal: true, speedMbps: null, operstate: 'unknown' };
const eth0: InterfaceFacts = { name: 'eth0', addresses: ['203.0.113.7', '2001:db8::7'], internal: false, speedMbps: 1000, operstate: 'up' };
const wlan0: InterfaceFacts = { name: 'wlan0', addresses: ['192.168.1.20'], internal: false, speedMbps: null, operstate: 'up' };

class FakeSource implements CapabilitySource {
  reads = 0;
  constructor(private readonly caps: Capabilities) {}
  read(): Promise<Capabilities> {
    this.reads++;
    return Promise.resolve(structuredClone(this.caps));
  }
}

describe('isOwnAddress', () => {
  const interfaces = [lo, eth0, wlan0];

  it.each([
    ['203.0.113.7', true],
    ['203.0.113.7:4000', true],
    ['::ffff:203.0.113.7', true],
    ['[2001:db8:0:0::7]:4000', true],
    ['2001:DB8::7', true],
    ['192.168.1.20:5060', true],
    ['198.51.100.9:4000', false],
    ['127.0.0.1', false],
    ['[::1]:4000', false],
    ['not-an-address', false],
    ['', false],
  ])('%s → %s', (address, own) => {
    expect(isOwnAddress(address, interfaces)).toBe(own);
  });

  it('names the interface that holds the address', () => {
    expect(interfaceWithAddress('203.0.113.7:4000', interfaces)?.name).toBe('eth0');
    expect(interfaceWithAddress('198.51.100.9', interfaces)).toBeUndefined();
  });

  it('extracts the IP from the forms the node reports', () => {
    expect(ipOf('203.0.113.7:4000')).toBe('203.0.113.7');
    expect(ipOf('[2001:db8::7]:4000')).toBe('2001:db8::7');
    expect(ipOf('2001:db8::7')).toBe('2001:db8::7');
    expect(ipOf('sn1.example.net:4000')).toBeUndefined();
  });
});

describe('CapabilitySource', () => {
  it('a fake source stands in for the machine', async () => {
    const source = new FakeSource({ cores: 2, load1: 3.2, cpuBusyPercent: 90, freeMemoryMb: 90, totalMemoryMb: 512, interfaces: [lo, eth0] });
    const caps = await source.read();
    expect(caps).toEqual({ cores: 2, load1: 3.2, cpuBusyPercent: 90, freeMemoryMb: 90, totalMemoryMb: 512, interfaces: [lo, eth0] });
    expect(source.reads).toBe(1);
  });

  it('reads this machine through systeminformation', async () => {
    const caps = await new SystemCapabilitySource().read();
    expect(Number.isInteger(caps.cores)).toBe(true);
    expect(caps.cores).toBeGreaterThanOrEqual(1);
    expect(caps.load1).toBeGreaterThanOrEqual(0);
    if (caps.cpuBusyPercent !== null) {
      expect(caps.cpuBusyPercent).toBeGreaterThanOrEqual(0);
      expect(caps.cpuBusyPercent).toBeLessThanOrEqual(100);
    }
    expect(caps.totalMemoryMb).toBeGreaterThan(0);
    expect(caps.freeMemoryMb).toBeGreaterThan(0);
    expect(caps.freeMemoryMb).toBeLessThanOrEqual(caps.totalMemoryMb);
    expect(caps.interfaces.length).toBeGreaterThanOrEqual(1);
    for (const iface of caps.interfaces) {
      expect(iface.name.length).toBeGreaterThan(0);
      expect(iface.speedMbps === null || iface.speedMbps > 0).toBe(true);
      for (const address of iface.addresses) expect(ipOf(address)).toBe(address);
    }
    // Loopback is there and internal, so it never counts as a public address.
    const loopback = caps.interfaces.find((i) => i.addresses.includes('127.0.0.1'));
    expect(loopback?.internal).toBe(true);
    expect(isOwnAddress('127.0.0.1', caps.interfaces)).toBe(false);
  }, 20_000);
});
