import { Argument } from 'commander';
import { z } from 'zod';
import type { CtlSubcommandSpec } from './ctl-command.js';

/**
 * `partyline ctl hook off|on` and `partyline ctl keys KEYS`: the sim HAL's
 * handset and keypad (src/phone/). Both print the phone's state and display
 * line; `--json` gives `{state, display, hook, dialled, muted, volume, missedCalls}`.
 */
const phoneView = z.object({ state: z.string(), display: z.string(), hook: z.enum(['on', 'off']), dialled: z.string() }).loose();
type PhoneView = z.infer<typeof phoneView>;

const printPhone = (p: PhoneView): string => `${p.state}: ${p.display}\n`;

export const hookSubcommand: CtlSubcommandSpec<PhoneView> = {
  name: 'hook',
  description: 'lift (off) or replace (on) the handset (sim HAL)',
  args: [new Argument('<state>', 'off (lift) or on (replace)').choices(['off', 'on'])],
  result: phoneView,
  printHuman: printPhone,
};

export const keysSubcommand: CtlSubcommandSpec<PhoneView> = {
  name: 'keys',
  description: 'press keys (sim HAL): digits 0-9 * #, or one of redial, hold, mute, volume-up, volume-down, speaker, conference',
  args: [['<keys>', 'e.g. 202# or hold']],
  result: phoneView,
  printHuman: printPhone,
};

export const PHONE_SUBCOMMANDS = [hookSubcommand, keysSubcommand] as const;
