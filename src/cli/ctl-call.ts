import { Argument } from 'commander';
import { z } from 'zod';
import type { CtlSubcommandSpec } from './ctl-command.js';

/**
 * `partyline ctl call USER | answer | hangup | hold | resume | dtmf DIGITS |
 * conference add USER | calls` (src/call/). `--json` prints the node's
 * answer as is: the call as `ctl status --json` shows it (`{id, state,
 * peer, direction, path, codec, rtp, rttMs, mos, ...}`), or the call log.
 */
const callState = z.enum(['dialing', 'ringing', 'active', 'held']);
const callView = z.object({
  id: z.string(),
  state: callState,
  peer: z.string(),
  direction: z.enum(['outgoing', 'incoming']),
  path: z.string().nullable(),
  codec: z.string().nullable(),
  rtp: z.object({ packetsSent: z.number(), packetsReceived: z.number(), packetsLost: z.number(), jitterMs: z.number() }),
  rttMs: z.number().nullable(),
  mos: z.number().nullable(),
  held: z.enum(['local', 'remote', 'both']).nullable(),
  conference: z.object({ mixer: z.boolean(), parties: z.array(z.object({ peer: z.string(), state: callState, path: z.string().nullable() }).loose()) }).optional(),
});
export type CallViewResult = z.infer<typeof callView>;

function describeCall(c: CallViewResult): string {
  const what = c.direction === 'outgoing' ? `to ${c.peer}` : `from ${c.peer}`;
  const extra: string[] = [];
  if (c.path) extra.push(`via ${c.path}`);
  if (c.held) extra.push(`held (${c.held})`);
  if (c.conference) extra.push(`conference: ${c.conference.parties.map((p) => p.peer).join(', ')}${c.conference.mixer ? ', mixing here' : ''}`);
  return `call ${what}: ${c.state}${extra.length ? ` (${extra.join(', ')})` : ''}\n`;
}

const CALL_TIMEOUT_MS = 20_000;

export const callSubcommand: CtlSubcommandSpec<CallViewResult> = {
  name: 'call',
  description: 'call a user: all of the user\'s devices ring; returns once one rings (fails when the user is unknown, offline or busy)',
  args: [['<user>', 'user name']],
  timeoutMs: CALL_TIMEOUT_MS,
  result: callView,
  printHuman: describeCall,
};

export const answerSubcommand: CtlSubcommandSpec<CallViewResult> = {
  name: 'answer',
  description: 'answer the call ringing here',
  timeoutMs: CALL_TIMEOUT_MS,
  result: callView,
  printHuman: describeCall,
};

export const hangupSubcommand: CtlSubcommandSpec<{ ended: string | null }> = {
  name: 'hangup',
  description: 'end the call (or cancel it while it rings out, or decline it while it rings here)',
  result: z.object({ ended: z.string().nullable() }),
  printHuman: () => 'call ended\n',
};

export const holdSubcommand: CtlSubcommandSpec<CallViewResult> = {
  name: 'hold',
  description: 'put the call on hold',
  result: callView,
  printHuman: describeCall,
};

export const resumeSubcommand: CtlSubcommandSpec<CallViewResult> = {
  name: 'resume',
  description: 'take the call off hold',
  result: callView,
  printHuman: describeCall,
};

export const dtmfSubcommand: CtlSubcommandSpec<{ sent: string }> = {
  name: 'dtmf',
  description: 'send DTMF digits in the call (0-9 * # A-D, RFC 4733 telephone events)',
  args: [['<digits>', 'digits to send']],
  result: z.object({ sent: z.string() }),
  printHuman: (r) => `sent ${r.sent}\n`,
};

export const conferenceSubcommand: CtlSubcommandSpec<CallViewResult> = {
  name: 'conference',
  description: 'add a user to the call, making it a conference (up to 6 parties)',
  args: [new Argument('<action>', 'add').choices(['add']), ['<user>', 'user name']],
  command: ({ args }) => `conference.${String(args.action)}`,
  toRequest: ({ args }) => ({ user: args.user }),
  timeoutMs: CALL_TIMEOUT_MS,
  result: callView,
  printHuman: describeCall,
};

const callLog = z.array(
  z.object({ id: z.string(), peer: z.string(), direction: z.enum(['outgoing', 'incoming']), outcome: z.string(), reason: z.string().nullable(), startedAt: z.string(), durationS: z.number(), missed: z.boolean() }),
);

export const callsSubcommand: CtlSubcommandSpec<z.infer<typeof callLog>> = {
  name: 'calls',
  description: 'the call log (missed calls marked), newest first',
  result: callLog,
  printHuman: (list) => {
    if (list.length === 0) return 'no calls yet\n';
    return `${list
      .map((c) => `${c.startedAt}  ${c.direction === 'outgoing' ? 'to  ' : 'from'} ${c.peer.padEnd(16)} ${c.missed ? 'MISSED' : c.outcome}${c.durationS ? ` ${c.durationS}s` : ''}`)
      .join('\n')}\n`;
  },
};

export const CALL_SUBCOMMANDS = [callSubcommand, answerSubcommand, hangupSubcommand, holdSubcommand, resumeSubcommand, dtmfSubcommand, conferenceSubcommand, callsSubcommand] as const;
