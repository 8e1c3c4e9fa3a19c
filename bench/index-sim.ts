/**
 * bench/index-sim: the global index at scale, by simulation (issue 5).
 *
 * The real index code — IndexNode handlers, Lookup, RoutingTable,
 * RecordStore, replication — runs on an in-process simulated network
 * (bench/lib/sim-network.ts: virtual clock, per-supernode latencies, JSON
 * encoding of every message, no sockets). 1,000 supernodes join one by one
 * (each through a random existing one, with a lookup of its own id and
 * Kademlia's bucket refresh), 100,000 users publish their location records,
 * then random supernodes search random users. Then 10% and 30% of the
 * supernodes die at once; the survivors notice on their own (pings of
 * silent contacts), re-replicate, the phones of the dead supernodes re-attach
 * and re-publish; the searches are measured again.
 *
 *   npm run build && node dist/bench/index-sim.js [--supernodes 1000] [--users 100000]
 *       [--lookups 10000] [--k 8] [--alpha 3] [--bucket 16] [--signed 1000]
 *       [--multi 0.1] [--kills 10,30] [--quorum 2] [--seed 1] [--wire-check] [--republish]
 *
 * Kills are cumulative: `--kills 10,30` kills 10% of the supernodes, repairs
 * and measures, then kills 30% of the survivors. `--republish` adds, at the
 * end, one hourly republish round by the record holders and its cost.
 *
 * What is real and what is not (printed with the results):
 * - Real: every lookup, FIND_NODE/FIND_VALUE/STORE/PING handler, routing
 *   table, store, replication and expiry decision; message sizes (JSON of the
 *   bodies, as the Link envelope carries them).
 * - Signatures: `--signed` users have real Ed25519 device keys, real
 *   credentials from a real login-server key and real signed records, and
 *   every supernode verifies them fully on every STORE and search. The
 *   other users' records have the same shape and size but random bytes in
 *   place of keys and signatures, and the simulation's validator checks only
 *   their shape — switched off for speed, in the simulation only.
 * - Latency: each supernode gets a one-way access latency of 5–45 ms; a
 *   link costs the sum of both ends, +1 ms processing; a dead supernode
 *   costs the 2 s request timeout. Times are virtual.
 */
import { parseArgs } from 'node:util';
import { issueCredential } from '../src/crypto/credential.js';
import type { Credential } from '../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../src/crypto/identity.js';
import type { Identity } from '../src/crypto/identity.js';
import { IndexNode } from '../src/overlay/index/index-node.js';
import { supernodeId } from '../src/overlay/index/node-id.js';
import { recordVerifier, signLocationRecord } from '../src/overlay/index/record.js';
import type { LocationRecord, RecordVerifier } from '../src/overlay/index/record.js';
import { Rng, SimNetwork } from './lib/sim-network.js';
import type { SimNode } from './lib/sim-network.js';

const { values } = parseArgs({
  options: {
    supernodes: { type: 'string', default: '1000' },
    users: { type: 'string', default: '100000' },
    lookups: { type: 'string', default: '10000' },
    k: { type: 'string', default: '8' },
    alpha: { type: 'string', default: '3' },
    bucket: { type: 'string', default: '16' },
    signed: { type: 'string', default: '1000' },
    multi: { type: 'string', default: '0.1' },
    kills: { type: 'string', default: '10,30' },
    seed: { type: 'string', default: '1' },
    quorum: { type: 'string', default: '2' },
    republish: { type: 'boolean', default: false },
    'wire-check': { type: 'boolean', default: false },
  },
});
const SUPERNODES = Number(values.supernodes);
const USERS = Number(values.users);
const LOOKUPS = Number(values.lookups);
const K = Number(values.k);
const ALPHA = Number(values.alpha);
const BUCKET = Number(values.bucket);
const SIGNED = Math.min(Number(values.signed), USERS);
const MULTI = Number(values.multi);
const KILLS = values.kills.split(',').filter(Boolean).map(Number);
const SEED = Number(values.seed);
const QUORUM = Number(values.quorum);
const NETWORK = 'sim';
const T_START = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

// ---- Devices and records --------------------------------------------------------

interface Device {
  user: string;
  deviceId: string;
  /** Real keys for signed users; undefined for the bulk. */
  identity?: Identity;
  credential: Credential;
  supernode: SimNode;
  addresses: string[];
  seq: number;
  current?: LocationRecord;
}

const loginServer = generateSigningKeyPair();
const realVerify = recordVerifier({ loginServerKey: loginServer.publicKey, network: NETWORK });
let realVerifications = 0;
/**
 * IndexNode checks every record's shape itself; beyond that, signed users'
 * records are verified for real (credential, signature, time) and the bulk's
 * are not (see the header).
 */
const simVerify: RecordVerifier = (record, now) => {
  if (!isSigned(record.user)) return;
  realVerifications++;
  realVerify(record, now);
};
const isSigned = (user: string): boolean => user.charCodeAt(0) === 115; /* 's' */

function fakeB64(rng: Rng, n: number): string {
  return rng.bytes(n).toString('base64');
}

function makeDevice(rng: Rng, user: string, supernode: SimNode, now: number): Device {
  const addresses = [`192.168.${rng.int(256)}.${1 + rng.int(254)}:${1024 + rng.int(60000)}`, `198.18.${rng.int(256)}.${1 + rng.int(254)}:${1024 + rng.int(60000)}`];
  if (isSigned(user)) {
    const identity = generateIdentity();
    return { user, deviceId: identity.deviceId, identity, credential: credentialFor(user, identity, now), supernode, addresses, seq: 0 };
  }
  const deviceId = rng.bytes(10).toString('hex').slice(0, 16);
  const credential: Credential = {
    v: 1, user, deviceId, deviceKey: fakeB64(rng, 32), noiseKey: fakeB64(rng, 32), network: NETWORK, issued: now, expires: now + 8 * 3_600_000, signature: fakeB64(rng, 64),
  };
  return { user, deviceId, credential, supernode, addresses, seq: 0 };
}

function credentialFor(user: string, identity: Identity, now: number): Credential {
  return issueCredential({
    user, deviceId: identity.deviceId, deviceKey: identity.signing.publicKey.toString('base64'), noiseKey: identity.noise.publicKey.toString('base64'),
    network: NETWORK, issued: now, expires: now + 8 * 3_600_000,
  }, loginServer);
}

/** A fresh record of the device (new seq and issue time), signed for real or with random bytes. */
function recordOf(rng: Rng, device: Device, now: number): LocationRecord {
  device.seq = Math.max(device.seq + 1, now);
  const fields = { user: device.user, device: { deviceId: device.deviceId, supernode: device.supernode.node.self.address, addresses: device.addresses, since: now }, seq: device.seq, issued: now };
  if (device.identity) {
    if (device.credential.expires <= now) device.credential = credentialFor(device.user, device.identity, now);
    device.current = signLocationRecord(fields, device.credential, device.identity.signing);
  } else {
    device.current = { v: 1, ...fields, credential: device.credential, signature: fakeB64(rng, 64) };
  }
  return device.current;
}

// ---- Statistics --------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Measurement {
  label: string;
  lookups: number;
  liveUsers: number;
  foundOfLive: number;
  foundOfAll: number;
  current: number;
  contacts: number[];
  bytes: number[];
  times: number[];
}

// ---- The simulation -----------------------------------------------------------------

class Simulation {
  readonly rng = new Rng(SEED);
  readonly net = new SimNetwork({ now: T_START, wireCheck: values['wire-check'] });
  readonly users: string[] = [];
  readonly devices = new Map<string, Device[]>();
  publishContacts: number[] = [];
  publishBytes: number[] = [];

  build(): void {
    for (let i = 0; i < SUPERNODES; i++) {
      const key = this.rng.bytes(32);
      const node = new IndexNode({
        self: { id: supernodeId(key), address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:4000`, publicKey: key.toString('base64') },
        verify: simVerify,
        k: K,
        alpha: ALPHA,
        bucketSize: BUCKET,
        searchQuorum: QUORUM,
        random: this.rng.bytes,
      });
      const sim = this.net.add(node, 5 + this.rng.next() * 40);
      if (i > 0) this.net.join(sim, this.net.nodes[this.rng.int(i)]!);
      this.net.now += 100;
    }
  }

  publishAll(): void {
    for (let i = 0; i < USERS; i++) {
      const user = i < SIGNED ? `s${i}` : `u${i}`;
      this.users.push(user);
      const count = this.rng.next() < MULTI ? 2 : 1;
      const list: Device[] = [];
      for (let d = 0; d < count; d++) {
        const device = makeDevice(this.rng, user, this.rng.pick(this.net.nodes), this.net.now);
        list.push(device);
        this.publish(device);
      }
      this.devices.set(user, list);
    }
  }

  publish(device: Device): void {
    const run = this.net.publish(device.supernode, [recordOf(this.rng, device, this.net.now)]);
    this.publishContacts.push(run.lookup.result.contacted);
    this.publishBytes.push(run.bytes);
    this.net.now += 1;
  }

  /** Users with at least one live copy of every device record (current or not). */
  liveUsers(): Set<string> {
    const seen = new Map<string, number>();
    for (const sim of this.net.nodes) {
      if (!sim.alive) continue;
      // No record expires during the simulated hours, so the devices held are the live ones.
      for (const entry of sim.node.store.users()) {
        const n = entry.devices.size;
        if (n > (seen.get(entry.user) ?? 0)) seen.set(entry.user, n);
      }
    }
    const out = new Set<string>();
    for (const user of this.users) if ((seen.get(user) ?? 0) >= this.devices.get(user)!.length) out.add(user);
    return out;
  }

  measure(label: string): Measurement {
    const live = this.liveUsers();
    const alive = this.net.live();
    const m: Measurement = { label, lookups: LOOKUPS, liveUsers: live.size, foundOfLive: 0, foundOfAll: 0, current: 0, contacts: [], bytes: [], times: [] };
    let liveAsked = 0;
    for (let i = 0; i < LOOKUPS; i++) {
      const user = this.rng.pick(this.users);
      const origin = this.rng.pick(alive);
      const result = this.net.search(origin, user);
      const expected = this.devices.get(user)!;
      const found = expected.every((d) => result.records.some((r) => r.device.deviceId === d.deviceId));
      const current = found && expected.every((d) => result.records.some((r) => r.device.deviceId === d.deviceId && r.seq === d.current!.seq));
      if (live.has(user)) {
        liveAsked++;
        if (found) m.foundOfLive++;
      }
      if (found) m.foundOfAll++;
      if (current) m.current++;
      m.contacts.push(result.contacted);
      m.bytes.push(result.bytes);
      // The phone asks its supernode and hears back: one more round trip on the access link.
      m.times.push(result.elapsedMs + 2 * origin.latencyMs + 2);
      this.net.now += 1;
    }
    m.foundOfLive = liveAsked === 0 ? NaN : m.foundOfLive / liveAsked;
    m.foundOfAll /= LOOKUPS;
    m.current /= LOOKUPS;
    for (const list of [m.contacts, m.bytes, m.times]) list.sort((a, b) => a - b);
    return m;
  }

  kill(percent: number): SimNode[] {
    const alive = this.net.live();
    const victims = this.rng.shuffle([...alive]).slice(0, Math.round((alive.length * percent) / 100));
    for (const v of victims) v.alive = false;
    return victims;
  }

  /**
   * Survivors notice the dead by themselves: maintenance every minute pings
   * contacts silent for 15 min (and again those that failed: two failures
   * remove a contact), then re-replicates. Rounds run until a
   * round sends no STORE (at least 2, at most 8); the last dead contacts
   * (dead replacements promoted in their place) are cleaned up by later
   * rounds as usual.
   */
  repair(): { rounds: number; messages: number; bytes: number } {
    const before = { ...this.net.traffic.maintenance };
    const stores = (): number => this.net.byType.get('maintenance index.store')?.messages ?? 0;
    this.net.now += 16 * MINUTE;
    let rounds = 0;
    while (rounds < 8) {
      const stored = stores();
      this.net.maintain();
      this.net.now += MINUTE;
      rounds++;
      if (rounds >= 2 && stores() === stored) break;
    }
    return { rounds, messages: this.net.traffic.maintenance.messages - before.messages, bytes: this.net.traffic.maintenance.bytes - before.bytes };
  }

  /** One hour later: the holders' hourly republish (Kademlia), as maintenance does it. */
  republishHour(): { messages: number; bytes: number } {
    const before = { ...this.net.traffic.maintenance };
    this.net.now += 61 * MINUTE;
    this.net.maintain();
    return { messages: this.net.traffic.maintenance.messages - before.messages, bytes: this.net.traffic.maintenance.bytes - before.bytes };
  }

  /** Phones whose supernode died re-attach to a live one and publish a new record. */
  reattach(): number {
    const alive = this.net.live();
    let count = 0;
    for (const list of this.devices.values()) {
      for (const device of list) {
        if (device.supernode.alive) continue;
        device.supernode = this.rng.pick(alive);
        this.publish(device);
        count++;
      }
    }
    return count;
  }

  /** The hourly refresh of online phones, for those whose every copy is gone (the others' refresh changes nothing measured). */
  refreshLost(): number {
    const live = this.liveUsers();
    let count = 0;
    for (const user of this.users) {
      if (live.has(user)) continue;
      for (const device of this.devices.get(user)!) {
        this.publish(device);
        count++;
      }
    }
    return count;
  }

  /** Live supernodes holding each user's records: mean and minimum over users. */
  copies(): { mean: number; min: number } {
    const count = new Map<string, number>();
    for (const sim of this.net.nodes) {
      if (!sim.alive) continue;
      for (const entry of sim.node.store.users()) count.set(entry.user, (count.get(entry.user) ?? 0) + 1);
    }
    let sum = 0;
    let min = Infinity;
    for (const user of this.users) {
      const c = count.get(user) ?? 0;
      sum += c;
      min = Math.min(min, c);
    }
    return { mean: sum / this.users.length, min };
  }

  recordsPerSupernode(): { mean: number; max: number } {
    const counts = this.net.live().map((s) => s.node.store.recordCount);
    return { mean: counts.reduce((a, b) => a + b, 0) / counts.length, max: Math.max(...counts) };
  }
}

// ---- Output ---------------------------------------------------------------------------------

const pct = (x: number): string => (Number.isNaN(x) ? '   -   ' : `${(100 * x).toFixed(2).padStart(6)}%`);
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
const mean = (list: number[]): number => list.reduce((a, b) => a + b, 0) / Math.max(1, list.length);

function row(m: Measurement): string {
  const contacts = `${percentile(m.contacts, 50)} / ${percentile(m.contacts, 99)}`;
  const bytes = `${kb(percentile(m.bytes, 50))} / ${kb(mean(m.bytes))}`;
  const times = `${(percentile(m.times, 50) / 1000).toFixed(2)} / ${(percentile(m.times, 99) / 1000).toFixed(2)} s`;
  return `${m.label.padEnd(44)} ${pct(m.foundOfLive)}  ${pct(m.foundOfAll)}  ${pct(m.current)}  ${contacts.padStart(9)}  ${bytes.padStart(17)}  ${times.padStart(14)}`;
}

function header(): string[] {
  return [
    `${''.padEnd(44)} ${'found'.padStart(7)}  ${'found'.padStart(7)}  ${'current'.padStart(7)}  ${'contacts'.padStart(9)}  ${'bytes/lookup'.padStart(17)}  ${'search time'.padStart(14)}`,
    `${''.padEnd(44)} ${'(live)'.padStart(7)}  ${'(all)'.padStart(7)}  ${''.padStart(7)}  ${'p50 / p99'.padStart(9)}  ${'p50 / mean'.padStart(17)}  ${'p50 / p99'.padStart(14)}`,
    `${'Skype (Baset & Schulzrinne 2004)'.padEnd(44)} ${'"all"'.padStart(7)}  ${''.padStart(7)}  ${''.padStart(7)}  ${'~8 nodes'.padStart(9)}  ${'-'.padStart(17)}  ${'3-4 s'.padStart(14)}`,
  ];
}

function main(): void {
  const started = performance.now();
  const lap = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const lines: string[] = [];
  const log = (line: string): void => {
    console.log(line);
    lines.push(line);
  };

  console.log(`index-sim: ${SUPERNODES} supernodes, ${USERS} users (${(MULTI * 100).toFixed(0)}% with two devices), k=${K}, alpha=${ALPHA}, bucket=${BUCKET}, search quorum=${QUORUM}, seed=${SEED}`);
  const sim = new Simulation();
  sim.build();
  const tableSizes = sim.net.nodes.map((s) => s.node.table.size);
  console.log(`built: mean routing table ${mean(tableSizes).toFixed(0)} contacts (min ${Math.min(...tableSizes)}), join traffic ${sim.net.traffic.join.messages} messages [${lap()}]`);
  sim.publishAll();
  const records = [...sim.devices.values()].reduce((a, l) => a + l.length, 0);
  const perNode = sim.recordsPerSupernode();
  console.log(`published ${records} device records: contacts per publish p50 ${percentile([...sim.publishContacts].sort((a, b) => a - b), 50)}, bytes per publish (FIND_NODE + ${K} STOREs) mean ${kb(mean(sim.publishBytes))}; records per supernode mean ${perNode.mean.toFixed(0)}, max ${perNode.max} [${lap()}]`);

  const results: Measurement[] = [sim.measure('steady state')];
  console.log(`${row(results[0]!)} [${lap()}]`);
  const notes: string[] = [];
  for (const percent of KILLS) {
    const alive = sim.net.live().length;
    const copiesBefore = sim.copies();
    const victims = sim.kill(percent);
    const liveAfterKill = sim.liveUsers().size;
    const lost = USERS - liveAfterKill;
    results.push(sim.measure(`${percent}% killed (${victims.length} of ${alive} live), no repair`));
    console.log(`${row(results.at(-1)!)} [${lap()}]`);
    const typesBefore = new Map([...sim.net.byType].map(([t, v]) => [t, { ...v }]));
    const repair = sim.repair();
    const repairTypes = [...sim.net.byType].filter(([t]) => t.startsWith('maintenance')).map(([t, v]) => {
      const b = typesBefore.get(t) ?? { messages: 0, bytes: 0, failed: 0 };
      return `${t.replace('maintenance index.', '')} ${v.messages - b.messages} (${kb(v.bytes - b.bytes)})`;
    });
    const reattached = sim.reattach();
    results.push(sim.measure(`${percent}% killed, after repair (+${16 + repair.rounds} min)`));
    console.log(`${row(results.at(-1)!)} [${lap()}]`);
    const refreshed = sim.refreshLost();
    if (refreshed > 0) {
      results.push(sim.measure(`${percent}% killed, after owners' refresh (+1 h)`));
      console.log(`${row(results.at(-1)!)} [${lap()}]`);
    }
    notes.push(
      `${percent}% killed: before, each user's records were on ${copiesBefore.mean.toFixed(1)} live supernodes (min ${copiesBefore.min}); `
      + `users with a device record gone from every holder: ${lost} (mean expected ${(USERS * (victims.length / alive) ** K).toFixed(1)}, in clumps: users between the same supernodes share one replica set).`,
      `    repair: ${repair.rounds} maintenance rounds, ${repair.messages} messages (${repairTypes.join(', ')}), ${kb(repair.bytes / Math.max(1, sim.net.live().length))} per live supernode; `
      + `${reattached} phones of dead supernodes re-attached and re-published; ${refreshed} device records re-published by their owners' hourly refresh.`,
    );
  }
  if (values.republish) {
    const cost = sim.republishHour();
    results.push(sim.measure('after the holders\' hourly republish (+1 h)'));
    console.log(`${row(results.at(-1)!)} [${lap()}]`);
    notes.push(`hourly republish by holders: ${cost.messages} messages, ${kb(cost.bytes / sim.net.live().length)} per live supernode per hour.`);
  }
  const perNodeAfter = sim.recordsPerSupernode();
  const elapsed = (performance.now() - started) / 1000;

  log('');
  log(`Global index simulation — ${SUPERNODES} supernodes, ${USERS} users, ${records} device records, ${LOOKUPS} searches per row; k=${K} replicas, alpha=${ALPHA}, bucket size ${BUCKET}, search quorum ${QUORUM}`);
  for (const line of header()) log(line);
  for (const m of results) log(row(m));
  log('');
  log(`found (live): searches for users with a live copy of every device record, found with all devices; found (all): of all searches; current: with each device's latest record.`);
  log(`contacts: supernodes asked by the searching supernode (0 when it holds the record itself). bytes: JSON of FIND_VALUE requests and answers.`);
  log(`search time: virtual; lookup plus one phone<->supernode round trip; links 10-90 ms one way, dead supernodes cost a 2 s timeout. Target: median contacts <= log2(${SUPERNODES}) = ${Math.log2(SUPERNODES).toFixed(1)}.`);
  for (const note of notes) log(note);
  log(`records per live supernode at the end: mean ${perNodeAfter.mean.toFixed(0)}, max ${perNodeAfter.max}; traffic: join ${sim.net.traffic.join.messages} msgs, publish ${sim.net.traffic.publish.messages} msgs / ${kb(sim.net.traffic.publish.bytes)}, maintenance ${sim.net.traffic.maintenance.messages} msgs / ${kb(sim.net.traffic.maintenance.bytes)}, read repair ${sim.net.traffic.repair.messages} msgs / ${kb(sim.net.traffic.repair.bytes)}`);
  log(`Real: lookups, handlers, routing tables, stores, replication, expiry, message sizes${values['wire-check'] ? ', zod schema checks of every message' : ''}. `
    + `Real Ed25519: ${SIGNED} users (${realVerifications} full record verifications). Simulated: the other ${USERS - SIGNED} users' signatures (shape checked only), network, clock.`);
  log(`Run time ${elapsed.toFixed(1)} s (node ${process.version}).`);
}

main();
