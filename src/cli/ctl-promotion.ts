import { Argument } from 'commander';
import { z } from 'zod';
import type { CtlSubcommandSpec } from './ctl-command.js';

/**
 * `partyline ctl promotion [auto|never|always]`: why this node is or is not
 * a supernode; with a policy, set it for this run (not written to the
 * configuration file) and check at once — `never` on a promoted phone hands
 * its supernode side over and steps down.
 */
const promotionView = z
  .object({
    policy: z.string(),
    role: z.string(),
    eligible: z.boolean(),
    reasons: z.array(z.string()),
    lastCheck: z.string().nullable(),
    next: z.object({ action: z.string(), at: z.string() }).nullable(),
  })
  .loose();
type PromotionView = z.infer<typeof promotionView>;

export function formatPromotion(p: PromotionView): string {
  const lines = [`policy ${p.policy}, role ${p.role}, ${p.eligible ? 'eligible' : 'not eligible'}${p.lastCheck ? ` (checked ${p.lastCheck})` : ' (not checked yet)'}`];
  for (const reason of p.reasons) lines.push(`  ${reason}`);
  if (p.next) lines.push(`  next: ${p.next.action} at ${p.next.at} if this holds`);
  return `${lines.join('\n')}\n`;
}

export const promotionSubcommand: CtlSubcommandSpec<PromotionView> = {
  name: 'promotion',
  description: 'why this node is (not) a supernode; with auto, never or always: set the policy for this run and check now',
  args: [new Argument('[policy]', 'auto, never or always').choices(['auto', 'never', 'always'])],
  timeoutMs: 30_000,
  result: promotionView,
  printHuman: formatPromotion,
};
