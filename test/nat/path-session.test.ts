/**
 * ConnectivitySession between two in-process peers over in-memory
 * transports that can be cut: the choice of path, the relay grace period,
 * failover, recovery, and what an attacker without the check password can
 * and cannot do. (Real sockets and real NAT: test/nat/probe.test.ts and
 * test/netlab/partyline-nat.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectivitySession, MAX_PRFLX_PATHS, randomCredential } from '../../src/nat/path/session.js';
import type { PathKind, PathTransport, SessionTimings } from '../../src/nat/path/session.js';
import { StunMethod } from '../../src/nat/stun/constants.js';
import { shortTermKey } from '../../src/nat/stun/credentials.js';
import { createTransactionId, encodeStunMessage } from '../../src/nat/stun/message.js';
import { memoryLogger } from '../helpers/log.js';
import { until } from '../helpers/until.js';

const TIMINGS: Partial<SessionTimings> = { checkTimeoutMs: 600, relayGraceMs: 200, consentMs: 100, deadAfterMs: 300, recheckMs: 400 };
const A_ADDR = { address: '192.0.2.1', port: 1000 };
const B_ADDR = { address: '192.0.2.2', port: 2000 };

interface Wire {
  up: boolean;
}

/** Two sessions joined by one in-memory path per kind. */
function pair(kinds: Array<{ kind: PathKind; wire: Wire }>) {
  const creds = { a: { ufrag: randomCredential(6), pwd: randomCredential(18) }, b: { ufrag: randomCredential(6), pwd: randomCredential(18) } };
  const { log: logger } = memoryLogger();
  const a = new ConnectivitySession({ localUfrag: creds.a.ufrag, localPwd: creds.a.pwd, remoteUfrag: creds.b.ufrag, remotePwd: creds.b.pwd, controlling: true, log: logger, timings: TIMINGS });
  const b = new ConnectivitySession({ localUfrag: creds.b.ufrag, localPwd: creds.b.pwd, remoteUfrag: creds.a.ufrag, remotePwd: creds.a.pwd, controlling: false, log: logger, timings: TIMINGS });
  const deliver = (to: ConnectivitySession, kind: PathKind, packet: Buffer, from: typeof A_ADDR) => {
    if (kind === 'direct-udp') to.receiveDirect(packet, from, () => ({ kind, origin: 'prflx', label: 'prflx', send: () => undefined }));
    else to.receiveRelay(packet, (to === a ? relayA : relayB).get(kind)!);
  };
  const relayA = new Map<PathKind, ReturnType<ConnectivitySession['addPath']>>();
  const relayB = new Map<PathKind, ReturnType<ConnectivitySession['addPath']>>();
  for (const { kind, wire } of kinds) {
    const ta: PathTransport = { kind, origin: kind === 'direct-udp' ? 'srflx' : 'relay', label: `a-${kind}`, send: (p) => wire.up && setImmediate(() => deliver(b, kind, p, A_ADDR)) };
    const tb: PathTransport = { kind, origin: kind === 'direct-udp' ? 'srflx' : 'relay', label: `b-${kind}`, send: (p) => wire.up && setImmediate(() => deliver(a, kind, p, B_ADDR)) };
    if (kind === 'direct-udp') {
      a.addPath(ta, B_ADDR);
      b.addPath(tb, A_ADDR);
    } else {
      relayA.set(kind, a.addPath(ta));
      relayB.set(kind, b.addPath(tb));
    }
  }
  return { a, b, creds };
}

let sessions: ConnectivitySession[] = [];
afterEach(() => {
  for (const s of sessions) s.close();
  sessions = [];
});

describe('ConnectivitySession', () => {
  it('takes the direct path when it works, though the relay answers too', async () => {
    const { a, b } = pair([{ kind: 'direct-udp', wire: { up: true } }, { kind: 'relay-udp', wire: { up: true } }]);
    sessions = [a, b];
    a.start();
    b.start();
    await until('a selected', async () => a.selected?.transport.kind === 'direct-udp', 2_000);
    await until('b follows the nomination', async () => b.selected?.transport.kind === 'direct-udp', 2_000);
    expect(a.setupMs).toBeLessThan(200);
    const got: string[] = [];
    b.on('data', (d) => got.push(d.toString()));
    a.send(Buffer.from([0x80, 1, 2, 3]));
    await until('data arrives', async () => got.length === 1, 1_000);
  });

  it('falls back to relay-udp after the grace period when the direct path never answers, and prefers it to relay-tcp', async () => {
    const { a, b } = pair([
      { kind: 'direct-udp', wire: { up: false } },
      { kind: 'relay-udp', wire: { up: true } },
      { kind: 'relay-tcp', wire: { up: true } },
    ]);
    sessions = [a, b];
    a.start();
    b.start();
    await until('a selected', async () => a.selected !== undefined, 2_000);
    expect(a.selected!.transport.kind).toBe('relay-udp');
    expect(a.setupMs!).toBeGreaterThanOrEqual(TIMINGS.relayGraceMs! - 20);
  });

  it('moves to the relay when the direct path dies, and back up when it recovers', async () => {
    const direct = { up: true };
    const { a, b } = pair([{ kind: 'direct-udp', wire: direct }, { kind: 'relay-udp', wire: { up: true } }]);
    sessions = [a, b];
    a.start();
    b.start();
    await until('direct selected', async () => a.selected?.transport.kind === 'direct-udp', 2_000);
    direct.up = false;
    await until('relay selected', async () => a.selected?.transport.kind === 'relay-udp', 3_000);
    expect(a.switches.at(-1)).toMatchObject({ from: 'direct-udp', to: 'relay-udp', reason: 'direct-udp path died' });
    direct.up = true;
    await until('direct again', async () => a.selected?.transport.kind === 'direct-udp', 3_000);
    expect(a.switches.at(-1)).toMatchObject({ from: 'relay-udp', to: 'direct-udp' });
  });

  it('reports failure when nothing answers', async () => {
    const { a, b } = pair([{ kind: 'direct-udp', wire: { up: false } }, { kind: 'relay-udp', wire: { up: false } }]);
    sessions = [a, b];
    const failed = new Promise((resolve) => a.once('failed', resolve));
    a.start();
    b.start();
    await failed;
    expect(a.selected).toBeUndefined();
    expect(a.paths().map((p) => p.state)).toEqual(['failed', 'failed']);
  });

  it('ignores checks without the right password, and strangers\' data; only an authenticated check opens a peer-reflexive path', () => {
    const { a, creds } = pair([]);
    sessions = [a];
    a.start();
    const stranger = { address: '203.0.113.9', port: 4444 };
    const sent: Buffer[] = [];
    const make = () => ({ kind: 'direct-udp' as const, origin: 'prflx' as const, label: 'x', send: (p: Buffer) => sent.push(p) });
    const check = (pwd: string) => encodeStunMessage(
      { method: StunMethod.BINDING, class: 'request', transactionId: createTransactionId(), attributes: [{ kind: 'username', value: `${creds.a.ufrag}:${creds.b.ufrag}` }] },
      { integrityKey: shortTermKey(pwd), fingerprint: true },
    );
    let data = 0;
    a.on('data', () => data++);
    a.receiveDirect(Buffer.from([0x80, 0, 0, 0]), stranger, make);
    expect(a.paths()).toHaveLength(0);
    expect(data).toBe(0);
    // Right username (it travels in clear), wrong password: no path, no answer, nothing sent.
    a.receiveDirect(check('not-the-password-at-all'), stranger, make);
    expect(a.paths()).toHaveLength(0);
    expect(sent).toHaveLength(0);
    // The real password: answered (a success response, 0x0101).
    a.receiveDirect(check(creds.a.pwd), stranger, make);
    expect(sent.filter((p) => p.readUInt16BE(0) === 0x0101)).toHaveLength(1);
    expect(a.pathTo(stranger)?.transport.origin).toBe('prflx');
    // Even with the password, a flood of source addresses makes only a few paths.
    for (let port = 5000; port < 5100; port++) a.receiveDirect(check(creds.a.pwd), { address: '203.0.113.9', port }, make);
    expect(a.paths().length).toBeLessThanOrEqual(MAX_PRFLX_PATHS);
  });

  it('a transport that throws (a closed relay leg) takes its path down, and send() does not throw', async () => {
    const relay = { up: true };
    const { a, b } = pair([{ kind: 'relay-tcp', wire: relay }]);
    sessions = [a, b];
    a.start();
    b.start();
    await until('relay selected', async () => a.selected?.transport.kind === 'relay-tcp', 2_000);
    const path = a.selected!;
    const send = path.transport.send;
    path.transport.send = () => {
      throw new Error('tcp:relay: leg closed');
    };
    expect(a.send(Buffer.from([0x80, 0x7f]))).toBe(false);
    expect(path.state).toBe('dead');
    expect(a.selected).toBeUndefined();
    path.transport.send = send;
  });
});
