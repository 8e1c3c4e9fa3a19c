import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ReachbackProber, ReachbackResponder, unprobeable } from '../../src/overlay/promotion/reachback.js';
import { portBlock } from '../helpers/network.js';
import { memoryLogger } from '../helpers/log.js';

/**
 * The reach-back and bandwidth probe over real loopback sockets: the
 * prober (a supernode) connects back over TCP and UDP and checks the
 * candidate's proof; the candidate's answer needs the token it sent over
 * the (here: imaginary) encrypted link.
 */
const port = portBlock(375);
const { log } = memoryLogger('warn');
/** These tests run on loopback, which a real supernode refuses to probe (see the last test). */
const onLoopback = (ip: string): boolean => ip !== '127.0.0.1';

describe('reach-back probe', () => {
  let responder: ReachbackResponder | undefined;
  afterEach(async () => {
    await responder?.stop();
    responder = undefined;
  });

  it('reaches a candidate over TCP and UDP and times both directions', async () => {
    const token = randomBytes(16);
    responder = new ReachbackResponder({ host: '127.0.0.1', port: port(0), token, log });
    await responder.start();
    const prober = new ReachbackProber({ log, refuse: onLoopback });
    const answer = await prober.probe('127.0.0.1:40000', { port: port(0), token: token.toString('base64'), bytes: 256 * 1024 });
    expect(answer).toMatchObject({ address: `127.0.0.1:${port(0)}`, tcp: true, udp: true });
    expect(answer.upKbps).toBeGreaterThan(1000);
    expect(responder.downKbps).toBeGreaterThan(1000);
  });

  it('probes the address the link came from, not one the candidate names', async () => {
    const token = randomBytes(16);
    responder = new ReachbackResponder({ host: '127.0.0.1', port: port(1), token, log });
    await responder.start();
    const prober = new ReachbackProber({ log, refuse: onLoopback });
    // The remote address is the link's: the request body has only a port.
    const answer = await prober.probe('[::ffff:127.0.0.1]:40000', { port: port(1), token: token.toString('base64'), bytes: 0 });
    expect(answer).toMatchObject({ address: `127.0.0.1:${port(1)}`, tcp: true, udp: true, upKbps: null });
  });

  it('a host on that port that does not know the token is not the candidate', async () => {
    responder = new ReachbackResponder({ host: '127.0.0.1', port: port(2), token: randomBytes(16), log });
    await responder.start();
    const prober = new ReachbackProber({ log, refuse: onLoopback });
    const answer = await prober.probe('127.0.0.1:40000', { port: port(2), token: randomBytes(16).toString('base64'), bytes: 1024 });
    expect(answer).toMatchObject({ tcp: false, udp: false, upKbps: null });
    expect(answer.detail).toMatch(/wrong proof/);
  });

  it('nothing listening: neither TCP nor UDP, with the reason', async () => {
    const prober = new ReachbackProber({ log, timeoutMs: 1500, refuse: onLoopback });
    const answer = await prober.probe('127.0.0.1:40000', { port: port(3), token: randomBytes(16).toString('base64'), bytes: 1024 });
    expect(answer).toMatchObject({ tcp: false, udp: false, upKbps: null });
    // Fixed words: the requester learns reached or not, not how the host answered.
    expect(answer.detail).toMatch(/^no TCP (connection|answer); no UDP answer$/);
  });

  it('one probe per address a minute: a second is refused at once', async () => {
    const prober = new ReachbackProber({ log, timeoutMs: 500, refuse: onLoopback });
    await prober.probe('127.0.0.1:40000', { port: port(4), token: randomBytes(16).toString('base64'), bytes: 0 });
    await expect(prober.probe('127.0.0.1:40001', { port: port(4), token: randomBytes(16).toString('base64'), bytes: 0 })).rejects.toMatchObject({ code: 'ERR_PROBE_RATE' });
  });

  it('the candidate cannot bind a port in use: a clear error', async () => {
    const token = randomBytes(16);
    responder = new ReachbackResponder({ host: '127.0.0.1', port: port(5), token, log });
    await responder.start();
    const second = new ReachbackResponder({ host: '127.0.0.1', port: port(5), token, log });
    await expect(second.start()).rejects.toMatchObject({ code: 'ERR_PROBE_LISTEN' });
  });

  it('a supernode never probes loopback, link-local, multicast or its own addresses (a link through a local proxy)', async () => {
    for (const ip of ['127.0.0.1', '0.0.0.0', '169.254.1.1', '224.0.0.251', '::1', 'fe80::1']) expect(unprobeable(ip), ip).toBe(true);
    const own = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4');
    if (own) expect(unprobeable(own.address)).toBe(true);
    expect(unprobeable('198.51.100.7')).toBe(false);
    const prober = new ReachbackProber({ log });
    await expect(prober.probe('127.0.0.1:40000', { port: port(6), token: randomBytes(16).toString('base64'), bytes: 0 })).rejects.toMatchObject({ code: 'ERR_PROBE_ADDRESS' });
  });
});
