/**
 * `partyline ctl status` without `--json`:
 *
 *     user:       alice
 *     device:     2mX9...
 *     role:       ordinary
 *     logged in:  yes
 *     supernode:  203.0.113.5:40000 (rtt 12 ms)
 *     host cache: 37 supernodes
 *     uptime:     1h 02m 03s
 *
 * Fields it does not know (added by later stages) follow, printed generically.
 */
import { isPlainObject } from '../config/introspect.js';
import { formatDuration, formatFields, inlineExtras } from './format.js';
import type { FieldFormatter, FieldSpec } from './format.js';

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isString = (v: unknown): v is string => typeof v === 'string';

const text: FieldFormatter = (v) => (isString(v) ? v : undefined);

const user: FieldFormatter = (v) => (v === null ? 'none (waiting for provisioning)' : text(v));

const yesNo: FieldFormatter = (v) => (typeof v === 'boolean' ? (v ? 'yes' : 'no') : undefined);

const supernode: FieldFormatter = (v) => {
  if (v === null) return 'none (not attached)';
  if (!isPlainObject(v) || !isString(v.address)) return undefined;
  const rtt = isNumber(v.rttMs) ? ` (rtt ${Math.round(v.rttMs)} ms)` : '';
  return `${v.address}${rtt}${inlineExtras(v, ['address', 'rttMs'])}`;
};

const hostCache: FieldFormatter = (v) => {
  if (!isPlainObject(v) || !isNumber(v.size)) return undefined;
  return `${v.size} supernode${v.size === 1 ? '' : 's'}${inlineExtras(v, ['size'])}`;
};

const uptime: FieldFormatter = (v) => (isNumber(v) ? formatDuration(v) : undefined);

const nat: FieldFormatter = (v) => {
  if (v === null) return 'not classified yet';
  if (!isPlainObject(v) || !isString(v.type)) return undefined;
  const address = isString(v.publicAddress) ? `, public address ${v.publicAddress}` : '';
  return `${v.type}${address}${inlineExtras(v, ['type', 'publicAddress'])}`;
};

const call: FieldFormatter = (v) => {
  if (v === null) return 'none';
  if (!isPlainObject(v) || !isString(v.state)) return undefined;
  const parts = [v.state];
  if (isString(v.direction)) parts.push(v.direction);
  if (isString(v.peer)) parts.push(`with ${v.peer}`);
  if (isNumber(v.durationS)) parts.push(formatDuration(v.durationS));
  if (isString(v.path)) parts.push(`via ${v.path}`);
  const quality: string[] = [];
  if (isString(v.codec)) quality.push(v.codec);
  if (isNumber(v.mos)) quality.push(`MOS ${v.mos}`);
  if (isNumber(v.rttMs)) quality.push(`rtt ${Math.round(v.rttMs)} ms`);
  if (isPlainObject(v.rtp) && isNumber(v.rtp.packetsReceived) && isNumber(v.rtp.packetsLost)) {
    quality.push(`${v.rtp.packetsReceived} packets in, ${v.rtp.packetsLost} lost`);
    if (isNumber(v.rtp.jitterMs)) quality.push(`jitter ${v.rtp.jitterMs} ms`);
  }
  if (isString(v.held)) quality.push(`held (${v.held})`);
  if (isPlainObject(v.conference) && Array.isArray(v.conference.parties)) {
    const peers = v.conference.parties.map((p) => (isPlainObject(p) && isString(p.peer) ? p.peer : '?'));
    quality.push(`conference${v.conference.mixer === true ? ' (mixing here)' : ''}: ${peers.join(', ')}`);
  }
  const details = quality.length > 0 ? ` (${quality.join(', ')})` : '';
  return `${parts.join(' ')}${details}`;
};

const phone: FieldFormatter = (v) => {
  if (!isPlainObject(v) || (v.hook !== 'on' && v.hook !== 'off')) return undefined;
  const dialled = isString(v.dialled) && v.dialled !== '' ? `, dialled ${v.dialled}` : '';
  return `${v.hook} hook${dialled}${inlineExtras(v, ['hook', 'dialled'])}`;
};

const leds: FieldFormatter = (v) => {
  if (!isPlainObject(v)) return undefined;
  const entries = Object.entries(v);
  if (entries.length === 0) return 'none';
  if (!entries.every(([, state]) => isString(state) || typeof state === 'boolean')) return undefined;
  return entries.map(([name, state]) => `${name}=${typeof state === 'boolean' ? (state ? 'on' : 'off') : state}`).join(', ');
};

const promotion: FieldFormatter = (v) => {
  if (!isPlainObject(v) || !isString(v.policy)) return undefined;
  const candidate = typeof v.candidate === 'boolean' ? `, candidate: ${v.candidate ? 'yes' : 'no'}` : '';
  const reason = isString(v.reason) ? ` (${v.reason})` : '';
  if (typeof v.eligible === 'boolean') {
    // src/overlay/promotion/hysteresis.ts PromotionDecisionStatus: the reasons say why (not).
    const reasons = Array.isArray(v.reasons) && v.reasons.every(isString) && !v.eligible ? `: ${v.reasons.join('; ')}` : '';
    const checked = v.lastCheck === null ? ' (not checked yet)' : '';
    return `policy ${v.policy}, eligible: ${v.eligible ? 'yes' : 'no'}${checked}${reasons}`;
  }
  return `policy ${v.policy}${candidate}${reason}${inlineExtras(v, ['policy', 'candidate', 'reason'])}`;
};

export const STATUS_FIELDS: readonly FieldSpec[] = [
  { key: 'user', label: 'user', format: user },
  { key: 'name', label: 'name', format: text },
  { key: 'deviceId', label: 'device', format: text },
  { key: 'role', label: 'role', format: text },
  { key: 'loggedIn', label: 'logged in', format: yesNo },
  { key: 'supernode', label: 'supernode', format: supernode },
  { key: 'hostCache', label: 'host cache', format: hostCache },
  { key: 'nat', label: 'nat', format: nat },
  { key: 'promotion', label: 'promotion', format: promotion },
  { key: 'call', label: 'call', format: call },
  { key: 'phone', label: 'phone', format: phone },
  { key: 'leds', label: 'leds', format: leds },
  { key: 'uptimeS', label: 'uptime', format: uptime },
];

/** The human status summary. Takes whatever the node sent: unknown or odd fields are printed generically. */
export function formatStatus(report: unknown): string {
  return formatFields(report, STATUS_FIELDS);
}
