import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PartylineError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { BuddiesAdd, BuddiesList, BuddiesRemove } from '../../login/messages.js';
import { normaliseUserName, userNameProblem } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { LoginPath } from '../login-link.js';

/**
 * The phone's side of the buddy list (DESIGN.md: "the buddy list is kept by
 * the login server so every device of the user sees the same list"). The
 * login server answers `buddies.list/add/remove` for the user of the
 * credential the link shows (login/account-service.ts); this class opens
 * such a link when needed (../login-link.ts: directly or tunnelled), and keeps
 * the last list it saw in `<stateDir>/buddies.json` so that presence keeps
 * working while the login server is down.
 *
 * Errors (BuddyError): `ERR_BUDDY_UNKNOWN_USER` (no such account),
 * `ERR_BUDDY_SELF`, `ERR_BUDDY_NAME` (not a valid user name),
 * `ERR_BUDDY_UNREACHABLE` (login server not reachable either way).
 */
export const BUDDIES_FILE = 'buddies.json';

export interface Buddy {
  user: string;
  /** Epoch ms the buddy was added (login server's clock). */
  addedAt: number;
}

export class BuddyError extends PartylineError {
  constructor(code: `ERR_BUDDY_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface BuddyListOptions {
  stateDir: string;
  log: Logger;
  /** A credentialed link to the login server (openLoginLink). */
  open: () => Promise<{ link: Link; path: LoginPath }>;
  /** Called (and awaited) with the new list whenever it differs from the one held. */
  onChange?: (buddies: readonly Buddy[]) => void | Promise<void>;
}

const fileSchema = z.object({
  version: z.literal(1),
  user: z.string().min(1).max(64),
  buddies: z.array(z.object({ user: z.string().min(1).max(64), addedAt: z.number().int().nonnegative() }).strict()).max(10_000),
}).strict();

export class BuddyList {
  #options: BuddyListOptions;
  #buddies: Buddy[] = [];
  #owner: string | undefined;

  constructor(options: BuddyListOptions) {
    this.#options = options;
  }

  /** The last list seen (from the login server, or the saved copy). */
  get list(): readonly Buddy[] {
    return this.#buddies;
  }

  /** Load the saved list of `owner` (a list saved for another account is ignored). */
  async load(owner: string): Promise<void> {
    this.#owner = normaliseUserName(owner);
    const path = join(this.#options.stateDir, BUDDIES_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#options.log.warn({ path, err: errorMessage(err) }, 'cannot read the saved buddy list');
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.#options.log.warn({ path }, 'saved buddy list is not JSON: ignored (the login server has the list)');
      return;
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success || parsed.data.user !== this.#owner) {
      this.#options.log.warn({ path }, 'saved buddy list is not usable: ignored (the login server has the list)');
      return;
    }
    this.#buddies = parsed.data.buddies;
  }

  /** The list from the login server (saved, and announced when it changed). */
  async refresh(): Promise<readonly Buddy[]> {
    return this.#call(async (link) => link.request(BuddiesList, {}, { timeoutMs: 5_000 }));
  }

  async add(user: string): Promise<readonly Buddy[]> {
    const name = this.#checkName(user);
    return this.#call(async (link) => link.request(BuddiesAdd, { user: name }, { timeoutMs: 5_000 }), name);
  }

  async remove(user: string): Promise<readonly Buddy[]> {
    const name = this.#checkName(user);
    return this.#call(async (link) => link.request(BuddiesRemove, { user: name }, { timeoutMs: 5_000 }), name);
  }

  #checkName(user: string): string {
    const problem = userNameProblem(user);
    if (problem !== undefined) throw new BuddyError('ERR_BUDDY_NAME', `user name ${JSON.stringify(user.slice(0, 40))}: ${problem}`);
    const name = normaliseUserName(user);
    if (name === this.#owner) throw new BuddyError('ERR_BUDDY_SELF', `${name} is this phone's own user: cannot be a buddy`);
    return name;
  }

  async #call(request: (link: Link) => Promise<{ buddies: Buddy[] }>, buddy?: string): Promise<readonly Buddy[]> {
    let opened: { link: Link; path: LoginPath };
    try {
      opened = await this.#options.open();
    } catch (err) {
      throw new BuddyError('ERR_BUDDY_UNREACHABLE', `the buddy list is kept by the login server, which cannot be reached: ${errorMessage(err)}`, { cause: err });
    }
    let answer: { buddies: Buddy[] };
    try {
      answer = await request(opened.link);
    } catch (err) {
      throw translate(err, buddy);
    } finally {
      opened.link.close();
    }
    await this.#set(answer.buddies);
    return this.#buddies;
  }

  async #set(buddies: Buddy[]): Promise<void> {
    const sorted = [...buddies].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    const changed = JSON.stringify(sorted) !== JSON.stringify(this.#buddies);
    this.#buddies = sorted;
    if (!changed) return;
    if (this.#owner) {
      const path = join(this.#options.stateDir, BUDDIES_FILE);
      await writeFileAtomic(path, `${JSON.stringify({ version: 1, user: this.#owner, buddies: sorted })}\n`, { mode: 0o600 }).catch((err: unknown) =>
        this.#options.log.warn({ path, err: errorMessage(err) }, 'cannot save the buddy list'));
    }
    await this.#options.onChange?.(this.#buddies);
  }
}

/** The login server's account errors, as buddy errors a user understands. */
function translate(err: unknown, buddy: string | undefined): unknown {
  if (!(err instanceof PartylineError)) return err;
  switch (err.code) {
    case 'ERR_ACCOUNT_UNKNOWN':
      return new BuddyError('ERR_BUDDY_UNKNOWN_USER', buddy ? `no such user ${JSON.stringify(buddy)}: nobody by that name has an account` : err.message, { cause: err });
    case 'ERR_ACCOUNT_BUDDY_SELF':
      return new BuddyError('ERR_BUDDY_SELF', err.message, { cause: err });
    case 'ERR_ACCOUNT_NAME_INVALID':
      return new BuddyError('ERR_BUDDY_NAME', err.message, { cause: err });
    default:
      return err;
  }
}
