import { Argument } from 'commander';
import { z } from 'zod';
import { PRESENCE_STATES, SETTABLE_PRESENCE_STATES } from '../overlay/presence/state.js';
import type { CtlSubcommandSpec } from './ctl-command.js';

/**
 * `partyline ctl buddies | buddy add|remove USER | presence [STATE] |
 * message USER TEXT | messages` (overlay/presence, overlay/im). `--json`
 * prints the node's answer as is: `buddies` a list of `{user, online,
 * presence}`, `messages` a list of `{id, direction, from, to, time, text,
 * delivered}`.
 */
const buddyPresence = z.object({ user: z.string(), online: z.boolean(), presence: z.enum(PRESENCE_STATES) });
const buddyList = z.array(buddyPresence);
export type BuddyListView = z.infer<typeof buddyList>;

function formatBuddies(list: BuddyListView): string {
  if (list.length === 0) return 'no buddies yet (partyline ctl buddy add USER)\n';
  const width = Math.max(...list.map((b) => b.user.length));
  return `${list.map((b) => `${b.user.padEnd(width)}  ${b.presence}`).join('\n')}\n`;
}

export const buddiesSubcommand: CtlSubcommandSpec<BuddyListView> = {
  name: 'buddies',
  description: 'show the buddy list (kept by the login server) and who is online',
  timeoutMs: 15_000,
  result: buddyList,
  printHuman: formatBuddies,
};

export const buddySubcommand: CtlSubcommandSpec<BuddyListView> = {
  name: 'buddy',
  description: 'add a user to the buddy list, or remove one',
  args: [new Argument('<action>', 'add or remove').choices(['add', 'remove']), ['<user>', 'user name']],
  command: ({ args }) => `buddy.${String(args.action)}`,
  toRequest: ({ args }) => ({ user: args.user }),
  timeoutMs: 15_000,
  result: buddyList,
  printHuman: formatBuddies,
};

const presenceView = z.object({ state: z.enum(SETTABLE_PRESENCE_STATES) });

export const presenceSubcommand: CtlSubcommandSpec<z.infer<typeof presenceView>> = {
  name: 'presence',
  description: 'show this phone\'s presence, or set it (online, in-call)',
  args: [new Argument('[state]', 'new state').choices([...SETTABLE_PRESENCE_STATES])],
  toRequest: ({ args }) => (args.state === undefined ? {} : { state: args.state }),
  timeoutMs: 15_000,
  result: presenceView,
  printHuman: (r) => `presence: ${r.state}\n`,
};

const sendResult = z.object({ id: z.string(), to: z.string(), devices: z.number(), delivered: z.number(), held: z.number() });

export const messageSubcommand: CtlSubcommandSpec<z.infer<typeof sendResult>> = {
  name: 'message',
  description: 'send an instant message to every device of a user (held for up to 72 h for devices that are offline)',
  args: [['<user>', 'user name'], ['<text...>', 'the message']],
  toRequest: ({ args }) => ({ user: args.user, text: ([] as string[]).concat(args.text ?? []).join(' ') }),
  timeoutMs: 30_000,
  result: sendResult,
  printHuman: (r) => {
    const parts = [`${r.delivered} delivered`];
    if (r.held > 0) parts.push(`${r.held} held until ${r.held === 1 ? 'it logs' : 'they log'} in`);
    return `sent to ${r.to} (${r.devices} device${r.devices === 1 ? '' : 's'}: ${parts.join(', ')})\n`;
  },
};

const entry = z.object({
  id: z.string(),
  direction: z.enum(['in', 'out']),
  from: z.string(),
  to: z.string(),
  time: z.number(),
  text: z.string(),
  delivered: z.boolean(),
  device: z.string().optional(),
  held: z.number().optional(),
});

export const messagesSubcommand: CtlSubcommandSpec<Array<z.infer<typeof entry>>> = {
  name: 'messages',
  description: 'show instant messages received and sent',
  result: z.array(entry),
  printHuman: (list) => {
    if (list.length === 0) return 'no messages\n';
    return `${list
      .map((m) => {
        const when = new Date(m.time).toISOString().replace(/\.\d+Z$/, 'Z');
        const state = m.direction === 'out' ? (m.delivered ? ' (delivered)' : ' (not delivered yet)') : '';
        return `${when}  ${m.from} -> ${m.to}${state}: ${m.text}`;
      })
      .join('\n')}\n`;
  },
};
