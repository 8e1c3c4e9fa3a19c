import { describe, expect, it } from 'vitest';
import { classifyNatResults, possibleFiltering, possibleMapping } from '../../src/nat/classify.js';
import type { NatBehaviour, NatProbeResults, NatType, ProbeOutcome } from '../../src/nat/classify.js';
import { verdictSettled } from '../../src/nat/nat-probe.js';
import type { ProbeSlot, SlotState } from '../../src/nat/nat-probe.js';

const LOCAL = { address: '10.0.0.2', port: 5000 };
const PUBLIC = { address: '203.0.113.7', port: 62000 };
const OTHER_MAPPING = { address: '203.0.113.7', port: 62001 };

const ok = (mapped = PUBLIC): ProbeOutcome => ({ status: 'ok', mapped });
const lost: ProbeOutcome = { status: 'no-response' };
const unsupported: ProbeOutcome = { status: 'unsupported' };
const EI: NatBehaviour = 'endpoint-independent';
const AD: NatBehaviour = 'address-dependent';
const APD: NatBehaviour = 'address-and-port-dependent';

/** Test outcomes by name: 'ok', 'lost' (no response), 'n/a' (not run), 'unsupported'; for mapping tests 'same'/'other'. */
type Filter = 'ok' | 'lost' | 'n/a' | 'unsupported';
type Map = 'same' | 'other' | 'lost' | 'n/a' | 'unsupported';
const filterOutcome = (f: Filter): ProbeOutcome | undefined => ({ ok: ok(), lost, 'n/a': undefined, unsupported })[f];
const mapOutcome = (m: Map): ProbeOutcome | undefined => ({ same: ok(PUBLIC), other: ok(OTHER_MAPPING), lost, 'n/a': undefined, unsupported })[m];

/** Filtering table: (change IP+port, change port) → behaviours still possible. */
const FILTERING: Array<[Filter, Filter, NatBehaviour[]]> = [
  ['ok', 'ok', [EI]],
  ['ok', 'lost', [EI]], // an answer that got through outweighs one that was lost
  ['ok', 'n/a', [EI]],
  ['lost', 'ok', [AD]],
  ['lost', 'lost', [APD]],
  ['lost', 'n/a', [AD, APD]],
  ['n/a', 'ok', [EI, AD]],
  ['n/a', 'lost', [APD]],
  ['n/a', 'n/a', [EI, AD, APD]],
];

/** Mapping table behind a NAT: (other IP, other port) → behaviours still possible. */
const MAPPING: Array<[Map, Map, NatBehaviour[]]> = [
  ['same', 'same', [EI]],
  ['same', 'n/a', [EI]],
  ['same', 'lost', [EI]],
  ['same', 'other', [APD]],
  ['other', 'same', [AD]],
  ['other', 'other', [APD]],
  ['other', 'n/a', [AD, APD]],
  ['other', 'lost', [AD, APD]],
  ['n/a', 'same', [EI, AD]],
  ['lost', 'same', [EI, AD]],
  ['n/a', 'other', [APD]],
  ['lost', 'other', [APD]],
  ['n/a', 'n/a', [EI, AD, APD]],
  ['lost', 'lost', [EI, AD, APD]],
  ['unsupported', 'unsupported', [EI, AD, APD]],
];

/** The classic type from the possible behaviours (the rules documented in classify.ts). */
function expectedType(natted: boolean, mapping: NatBehaviour[], filtering: NatBehaviour[]): NatType {
  const strictest = filtering.includes(APD) ? 'port-restricted' : filtering.includes(AD) ? 'restricted' : 'full-cone';
  if (!natted) return filtering.includes(EI) ? 'open' : strictest;
  if (!mapping.includes(EI)) return 'symmetric';
  if (mapping.length > 1) return 'unknown';
  return strictest;
}

function results(primary: ProbeOutcome, cip: Filter, cp: Filter, oip: Map, oport: Map, local = LOCAL): NatProbeResults {
  const r: NatProbeResults = { localAddresses: [local], primary };
  const set = <K extends keyof NatProbeResults>(key: K, value: NatProbeResults[K] | undefined): void => {
    if (value !== undefined) r[key] = value;
  };
  set('changeIpAndPort', filterOutcome(cip));
  set('changePort', filterOutcome(cp));
  set('otherIp', mapOutcome(oip));
  set('otherPort', mapOutcome(oport));
  return r;
}

describe('NAT classification (pure)', () => {
  it.each(FILTERING)('filtering: change IP+port %s, change port %s → %j', (cip, cp, expected) => {
    expect(possibleFiltering(filterOutcome(cip), filterOutcome(cp)).possible).toEqual(expected);
  });

  it.each(MAPPING)('mapping behind a NAT: other IP %s, other port %s → %j', (oip, oport, expected) => {
    expect(possibleMapping(true, PUBLIC, mapOutcome(oip), mapOutcome(oport)).possible).toEqual(expected);
  });

  it('mapping without a NAT is endpoint-independent whatever the tests say', () => {
    expect(possibleMapping(false, PUBLIC, ok(OTHER_MAPPING), ok(OTHER_MAPPING)).possible).toEqual([EI]);
  });

  it.each([
    // name, primary mapped = local?, cip, cp, other IP, other port, type, mapping, filtering
    ['open internet (loopback)', true, 'ok', 'ok', 'same', 'same', 'open', EI, EI],
    ['open, server with a second port only', true, 'unsupported', 'ok', 'same', 'same', 'open', EI, 'unknown'],
    ['open, single-address server, no B', true, 'unsupported', 'unsupported', 'n/a', 'n/a', 'open', EI, 'unknown'],
    ['no NAT, firewall lets only the same port in', true, 'lost', 'lost', 'same', 'same', 'port-restricted', EI, APD],
    ['no NAT, firewall filters per address', true, 'lost', 'ok', 'same', 'same', 'restricted', EI, AD],
    ['full cone', false, 'ok', 'ok', 'same', 'same', 'full-cone', EI, EI],
    ['restricted cone', false, 'lost', 'ok', 'same', 'same', 'restricted', EI, AD],
    ['port-restricted cone', false, 'lost', 'lost', 'same', 'same', 'port-restricted', EI, APD],
    ['port-restricted, mapping seen by B only', false, 'unsupported', 'lost', 'same', 'n/a', 'port-restricted', EI, APD],
    ['cone, filtering open or per address (no change IP): assume restricted', false, 'unsupported', 'ok', 'same', 'n/a', 'restricted', EI, 'unknown'],
    ['symmetric (address-dependent mapping)', false, 'lost', 'lost', 'other', 'same', 'symmetric', AD, APD],
    ['symmetric (address-and-port-dependent mapping)', false, 'lost', 'lost', 'other', 'other', 'symmetric', APD, APD],
    ['symmetric seen by B only', false, 'unsupported', 'lost', 'other', 'n/a', 'symmetric', 'unknown', APD],
    ['NAT, no mapping test possible', false, 'unsupported', 'lost', 'n/a', 'n/a', 'unknown', 'unknown', APD],
    ['NAT, B silent', false, 'lost', 'lost', 'lost', 'same', 'unknown', 'unknown', APD],
  ] as const)('%s', (_name, isLocal, cip, cp, oip, oport, type, mapping, filtering) => {
    const verdict = classifyNatResults(results(ok(isLocal ? LOCAL : PUBLIC), cip, cp, oip, oport));
    expect(verdict).toMatchObject({ type, mapping, filtering, publicAddress: isLocal ? LOCAL : PUBLIC });
    expect(verdict.reason.length).toBeGreaterThan(10);
  });

  it('udp-blocked when nothing answers; unknown when only another test answered', () => {
    expect(classifyNatResults(results(lost, 'lost', 'lost', 'lost', 'n/a'))).toMatchObject({ type: 'udp-blocked', mapping: 'unknown', filtering: 'unknown' });
    expect(classifyNatResults(results(lost, 'n/a', 'n/a', 'n/a', 'n/a')).type).toBe('udp-blocked');
    expect(classifyNatResults(results(lost, 'lost', 'lost', 'same', 'n/a'))).toMatchObject({ type: 'unknown', publicAddress: PUBLIC });
  });

  it('counts an IPv4-mapped local address as the same address', () => {
    const verdict = classifyNatResults(results(ok({ address: '10.0.0.2', port: 5000 }), 'ok', 'ok', 'same', 'same', { address: '::ffff:10.0.0.2', port: 5000 }));
    expect(verdict.type).toBe('open');
  });

  it('every combination of outcomes gives the type the behaviour tables predict', () => {
    const filters: Filter[] = ['ok', 'lost', 'n/a', 'unsupported'];
    const maps: Map[] = ['same', 'other', 'lost', 'n/a', 'unsupported'];
    let cases = 0;
    for (const natted of [true, false]) {
      for (const cip of filters) for (const cp of filters) for (const oip of maps) for (const oport of maps) {
        const verdict = classifyNatResults(results(ok(natted ? PUBLIC : LOCAL), cip, cp, oip, oport));
        const filtering = possibleFiltering(filterOutcome(cip), filterOutcome(cp)).possible;
        const mapping = possibleMapping(natted, natted ? PUBLIC : LOCAL, mapOutcome(oip), mapOutcome(oport)).possible;
        // The tables above pin these two down; here the combination rule is checked for all 800 cases.
        const expected = expectedType(natted, mapping, filtering);
        expect({ cip, cp, oip, oport, natted, type: verdict.type }).toEqual({ cip, cp, oip, oport, natted, type: expected });
        expect(verdict.mapping).toBe(mapping.length === 1 ? mapping[0] : 'unknown');
        expect(verdict.filtering).toBe(filtering.length === 1 ? filtering[0] : 'unknown');
        cases++;
      }
    }
    expect(cases).toBe(2 * 4 * 4 * 5 * 5);
  });
});

describe('deciding early (verdictSettled)', () => {
  const base = (over: Partial<Record<ProbeSlot, SlotState>>): Record<ProbeSlot, SlotState> => ({
    primary: 'pending', changeIpAndPort: 'pending', changePort: 'pending', otherIpB: 'pending', otherIpA: 'pending', otherPort: 'pending', ...over,
  });

  it('waits for test I', () => {
    expect(verdictSettled([LOCAL], base({}))).toBe(false);
  });

  it('an open host is settled as soon as an answer from the other IP and port arrived', () => {
    expect(verdictSettled([LOCAL], base({ primary: ok(LOCAL), changeIpAndPort: ok(LOCAL) }))).toBe(true);
    expect(verdictSettled([LOCAL], base({ primary: ok(LOCAL) }))).toBe(false);
  });

  it('a full cone is settled once B saw the same mapping and the change-IP answer came', () => {
    const state = base({ primary: ok(), otherIpB: ok(), changeIpAndPort: ok() });
    expect(verdictSettled([LOCAL], state)).toBe(false); // A's alternate tests could still show another mapping
    expect(verdictSettled([LOCAL], { ...state, otherIpA: undefined, otherPort: undefined })).toBe(true);
  });

  it('never settles while a pending test could change the verdict', () => {
    expect(verdictSettled([LOCAL], base({ primary: ok(), otherIpB: ok(), otherIpA: undefined, otherPort: undefined, changeIpAndPort: lost }))).toBe(false);
    expect(verdictSettled([LOCAL], { primary: ok(), otherIpB: ok(), otherIpA: undefined, otherPort: undefined, changeIpAndPort: lost, changePort: lost })).toBe(true);
  });
});
