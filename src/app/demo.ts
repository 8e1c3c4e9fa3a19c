import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import { AccountStore } from '../login/account-store.js';
import { formatLoginServerKey, loadOrCreateLoginKey } from '../login/login-key.js';
import { LoginServer } from '../login/server.js';
import { componentLogger } from '../system/logging.js';
import type { Logger } from '../system/logging.js';
import { PartylineNode } from './node.js';
import type { NodeStatus } from './node.js';

/**
 * The embedded-default demo (`partyline demo`, `npm start`): one process
 * with a login server, a supernode running the sound-test service, and two
 * phones on the sim HAL — alice (extension 201) and bob (202); 300 is the
 * sound test. Everything on 127.0.0.1 with free ports, in a state directory
 * of its own. The phones' microphones play the speech samples from
 * test/fixtures/audio/ when the checkout has them (silence otherwise) and
 * their speakers are recorded to `<dir>/<phone>-speaker.wav`.
 */
export const DEMO_PHONES = ['alice', 'bob'] as const;
export type DemoPhone = (typeof DEMO_PHONES)[number];
export const DEMO_EXTENSIONS: Readonly<Record<string, string>> = { '201': 'alice', '202': 'bob', '300': 'echo' };
const NETWORK = 'demo';

export interface DemoOptions {
  dir: string;
  log: Logger;
}

export class Demo {
  readonly dir: string;
  readonly phones: ReadonlyMap<DemoPhone, PartylineNode>;
  #login: LoginServer;
  #supernode: PartylineNode;

  private constructor(dir: string, login: LoginServer, supernode: PartylineNode, phones: Map<DemoPhone, PartylineNode>) {
    this.dir = dir;
    this.#login = login;
    this.#supernode = supernode;
    this.phones = phones;
  }

  static async start(options: DemoOptions): Promise<Demo> {
    const { dir, log } = options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Accounts with fresh random passwords (never shown: the demo's nodes read them from their configuration).
    const loginDir = join(dir, 'login');
    const passwords = new Map<string, string>();
    const store = AccountStore.open(loginDir, { create: true });
    try {
      for (const user of ['sn1', 'echo', ...DEMO_PHONES]) {
        const password = randomBytes(12).toString('base64url');
        passwords.set(user, password);
        if (store.getUser(user)) await store.setPassword(user, password);
        else await store.addUser(user, password);
      }
    } finally {
      store.close();
    }
    const key = formatLoginServerKey((await loadOrCreateLoginKey(loginDir)).identity);
    const login = new LoginServer({ dataDir: loginDir, host: '127.0.0.1', port: 0, network: NETWORK, log: componentLogger(log, 'login-server') });
    await login.start();
    const network = { name: NETWORK, mdns: false, keepAliveS: 15, loginServer: { address: `127.0.0.1:${login.port}`, publicKey: key } };

    const supernode = await startNode(dir, 'sn1', log, {
      network,
      account: { user: 'sn1', password: passwords.get('sn1') },
      supernode: { policy: 'always', soundTest: { user: 'echo', password: passwords.get('echo') } },
    });
    const snAddress = `127.0.0.1:${supernode.port}`;
    const phones = new Map<DemoPhone, PartylineNode>();
    const speech: Record<DemoPhone, string> = { alice: 'speech-a.wav', bob: 'speech-b.wav' };
    for (const name of DEMO_PHONES) {
      const sample = fileURLToPath(new URL(`../../../test/fixtures/audio/${speech[name]}`, import.meta.url));
      const node = await startNode(dir, name, log, {
        network: { ...network, bootstrap: [snAddress] },
        account: { user: name, password: passwords.get(name) },
        supernode: { policy: 'never' },
        hal: { audio: { driver: 'sim', ...(existsSync(sample) ? { input: sample } : {}), output: join(dir, `${name}-speaker.wav`) } },
        phone: { extensions: DEMO_EXTENSIONS },
      });
      phones.set(name, node);
    }
    return new Demo(dir, login, supernode, phones);
  }

  phone(name: DemoPhone): PartylineNode {
    return this.phones.get(name)!;
  }

  status(name: DemoPhone): NodeStatus {
    return this.phone(name).status();
  }

  /** Whether both phones can reach each other and the sound test (logged in, records published). */
  async ready(): Promise<boolean> {
    for (const [name, node] of this.phones) {
      if (!node.loggedIn) return false;
      for (const user of [...DEMO_PHONES.filter((p) => p !== name), 'echo']) {
        const found = await node.search(user).catch(() => undefined);
        if (!found || found.devices.length === 0) return false;
      }
    }
    return true;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.phones.values()].map((p) => p.stop()));
    await this.#supernode.stop();
    await this.#login.stop();
  }
}

async function startNode(dir: string, name: string, log: Logger, settings: Record<string, unknown>): Promise<PartylineNode> {
  const stateDir = join(dir, name);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'config.yaml');
  const config = { node: { stateDir, listen: '127.0.0.1', port: 0 }, ...settings, log: { level: 'info' } };
  await writeFile(file, stringify(config), { mode: 0o600 });
  const loaded = await loadConfig({ file, env: {}, overlayFile: false });
  const node = new PartylineNode(loaded.config, componentLogger(log, name));
  await node.start();
  return node;
}
