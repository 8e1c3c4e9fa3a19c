import { z } from 'zod';
import type { CtlSubcommandSpec } from './ctl-command.js';

const pathKind = z.enum(['direct-udp', 'relay-udp', 'relay-tcp']);

/** What `ctl probe --json` prints (PathService.probe's report). */
export const probeReportSchema = z.object({
  user: z.string(),
  deviceId: z.string(),
  path: pathKind.nullable(),
  rttMs: z.number().nullable(),
  lossPct: z.number(),
  sent: z.number(),
  received: z.number(),
  setupMs: z.number().nullable(),
  candidates: z.array(z.object({ kind: pathKind, origin: z.string(), address: z.string(), state: z.string(), rttMs: z.number().nullable(), checks: z.number() })),
  switches: z.array(z.object({ from: pathKind, to: pathKind, atMs: z.number(), reason: z.string() })),
  local: z.object({ udp: z.boolean(), relayLeg: z.string() }),
  remote: z.object({ udp: z.boolean(), relayLeg: z.string() }),
});
export type ProbeReportView = z.infer<typeof probeReportSchema>;

/**
 * `partyline ctl probe USER [--seconds N] [--json]`: set up a media path to
 * the user's device as a call would, exchange voice-sized packets for a
 * moment, and say which path was taken and how it performed (like
 * `tailscale ping`).
 */
export const probeSubcommand: CtlSubcommandSpec<ProbeReportView> = {
  name: 'probe',
  description: 'set up a media path to a user, exchange packets for a moment, and show path, round trip and loss',
  args: [['<user>', 'user name']],
  options: [['--seconds <n>', 'how long to exchange packets (default 2)']],
  timeoutMs: 30_000,
  toRequest: ({ args, options }) => ({
    user: args.user,
    ...(options.seconds !== undefined ? { seconds: Number(options.seconds) } : {}),
  }),
  result: probeReportSchema,
  printHuman: (r) => {
    const lines = [
      r.path
        ? `${r.user} (${r.deviceId}): ${r.path}, rtt ${r.rttMs ?? '?'} ms, loss ${r.lossPct}% (${r.received}/${r.sent}), set up in ${r.setupMs ?? '?'} ms`
        : `${r.user} (${r.deviceId}): no media path works`,
    ];
    for (const s of r.switches) lines.push(`  switched ${s.from} -> ${s.to} after ${s.atMs} ms (${s.reason})`);
    lines.push('  candidates tried:');
    for (const c of r.candidates) lines.push(`    ${c.kind.padEnd(10)} ${c.origin.padEnd(6)} ${c.address.padEnd(24)} ${c.state}${c.rttMs !== null ? ` ${c.rttMs} ms` : ''}`);
    return `${lines.join('\n')}\n`;
  },
};
