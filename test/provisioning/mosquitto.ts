/**
 * A real Mosquitto for the provisioning tests: its own config file on
 * loopback ports (a plain listener and a TLS one with a CA made here by
 * openssl), users in a password file, and the repository's ACL
 * (config/mosquitto/partyline.acl) — the one the README documents. The
 * mosquitto_pub / mosquitto_sub clients are run as a third party would.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/process.js';

const run = promisify(execFile);
export const ACL_FILE = join(REPO_ROOT, 'config', 'mosquitto', 'partyline.acl');

export interface MosquittoUsers {
  [user: string]: string;
}

/** A CA and a broker certificate for localhost/127.0.0.1 (EC keys: fast). */
export async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'broker.key');
  const csr = join(dir, 'broker.csr');
  const cert = join(dir, 'broker.pem');
  const ext = join(dir, 'broker.ext');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=partyline test CA']);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
  await writeFile(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { ca, cert, key };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class Mosquitto {
  #child: ChildProcess | undefined;
  #output = '';
  readonly conf: string;

  private constructor(conf: string) {
    this.conf = conf;
  }

  /** Write the config and password file into `dir`. */
  static async configure(dir: string, options: { port: number; tlsPort: number; users: MosquittoUsers; tls: { ca: string; cert: string; key: string } }): Promise<Mosquitto> {
    const passwd = join(dir, 'passwd');
    await writeFile(passwd, '');
    for (const [user, password] of Object.entries(options.users)) await run('mosquitto_passwd', ['-b', passwd, user, password]);
    const conf = join(dir, 'mosquitto.conf');
    await writeFile(conf, [
      'per_listener_settings false',
      'allow_anonymous false',
      `password_file ${passwd}`,
      `acl_file ${ACL_FILE}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      // Running as root, mosquitto would switch to the user "mosquitto", which cannot read the test's files.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${options.port} 127.0.0.1`,
      `listener ${options.tlsPort} 127.0.0.1`,
      `cafile ${options.tls.ca}`,
      `certfile ${options.tls.cert}`,
      `keyfile ${options.tls.key}`,
      '',
    ].join('\n'));
    const broker = new Mosquitto(conf);
    broker.ports = [options.port, options.tlsPort];
    return broker;
  }

  ports: number[] = [];

  get output(): string {
    return this.#output;
  }

  async start(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (d: Buffer) => (this.#output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.#output += d.toString()));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${this.#output}`);
      if ((await Promise.all(this.ports.map(portOpen))).every(Boolean)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen within 5 s: ${this.#output}`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/** mosquitto_sub: the messages it prints with -v ("topic payload"), after -C count or -W seconds. */
export async function mosquittoSub(port: number, user: string, password: string, topics: string[], options: { count?: number; waitS: number }): Promise<Array<{ topic: string; text: string }>> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', password, '-v', '-W', String(options.waitS), ...(options.count ? ['-C', String(options.count)] : []), ...topics.flatMap((t) => ['-t', t])];
  const result = await run('mosquitto_sub', args).catch((err: { stdout?: string; code?: number }) => {
    // -W ends with exit code 27 (timed out): what arrived before is still the answer.
    if (err.code === 27) return { stdout: err.stdout ?? '' };
    throw err;
  });
  return result.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const space = line.indexOf(' ');
      return { topic: line.slice(0, space), text: line.slice(space + 1) };
    });
}

export async function mosquittoPub(port: number, user: string, password: string, topic: string, message: string, retain = false): Promise<void> {
  await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', password, '-q', '1', ...(retain ? ['-r'] : []), '-t', topic, '-m', message]);
}

/**
 * A mosquitto_sub left running: the messages it prints, live. It is ready
 * once a marker published on a topic of its own comes back (its debug
 * output is block-buffered on a pipe, its messages are not).
 */
export async function startMosquittoSub(port: number, user: string, password: string, topics: string[]): Promise<{ messages: Array<{ topic: string; text: string }>; waitFor: (match: (m: { topic: string; text: string }) => boolean, timeoutMs?: number) => Promise<{ topic: string; text: string }>; stop: () => void }> {
  const marker = `partyline/_ready/${process.pid}-${Date.now()}`;
  const child = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', password, '-v', ...[...topics, marker].flatMap((t) => ['-t', t])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: Array<{ topic: string; text: string }> = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const space = line.indexOf(' ');
      if (space > 0) messages.push({ topic: line.slice(0, space), text: line.slice(space + 1) });
    }
  });
  const waitFor = async (match: (m: { topic: string; text: string }) => boolean, timeoutMs = 10_000): Promise<{ topic: string; text: string }> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = messages.find(match);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`mosquitto_sub saw no matching message within ${timeoutMs} ms; saw: ${messages.map((m) => `${m.topic} ${m.text.slice(0, 120)}`).join(' | ')}`);
  };
  const deadline = Date.now() + 5000;
  while (!messages.some((m) => m.topic === marker) && Date.now() < deadline) {
    await mosquittoPub(port, user, password, marker, 'ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { messages, waitFor, stop: () => child.kill() };
}
