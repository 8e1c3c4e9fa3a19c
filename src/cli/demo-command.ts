import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { emitKeypressEvents } from 'node:readline';
import pino from 'pino';
import { Demo, DEMO_PHONES } from '../app/demo.js';
import type { DemoPhone } from '../app/demo.js';
import type { NodeStatus } from '../app/node.js';
import { errorMessage } from '../errors.js';
import { createRootLogger } from '../system/logging.js';

/**
 * `partyline demo [--dir DIR] [--script FILE]`: the embedded-default demo
 * (src/app/demo.ts). In a terminal, a screen shows both phones — handset,
 * state, display line, LEDs, call — and keys work them: `a`/`b` lift or
 * replace alice's/bob's handset, Tab chooses whose keypad the digit keys
 * (0-9 * #) press, `h` hold, `m` mute, `r` redial, `q` quits. Logs go to
 * `<dir>/demo.log`. `--script FILE` runs steps instead (see runScript) and
 * exits 0 when all pass.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('one process with a login server, a supernode (with the sound test, extension 300) and two simulated phones: alice (201) and bob (202)')
    .option('--dir <dir>', 'state directory for the demo (default: a new one under the temporary directory)')
    .option('--script <file>', 'run the steps in FILE instead of the interactive screen')
    .action(async (options: { dir?: string; script?: string }) => {
      const dir = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'partyline-demo-'));
      const log = createRootLogger({ level: 'info', destination: pino.destination({ dest: join(dir, 'demo.log'), mkdir: true, sync: false }) });
      let demo: Demo | undefined;
      try {
        process.stdout.write(`partyline demo: starting in ${dir} (logs in demo.log)\n`);
        demo = await Demo.start({ dir, log });
        await waitReady(demo);
        if (options.script) {
          const ok = await runScript(demo, await readFile(options.script, 'utf8'), (line) => process.stdout.write(`${line}\n`));
          process.exitCode = ok ? 0 : 1;
        } else {
          await interactive(demo);
        }
      } catch (err) {
        process.stderr.write(`partyline demo: ${errorMessage(err)}\n`);
        process.exitCode = 1;
      } finally {
        await demo?.stop().catch(() => undefined);
      }
    });
}

async function waitReady(demo: Demo): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await demo.ready())) {
    if (Date.now() > deadline) throw new Error('the demo network did not come up within 30 s (see demo.log)');
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One phone in a line: handset, state, display, LEDs, call. */
export function describePhone(name: string, status: NodeStatus): string[] {
  const phone = status.phone as { state?: string; display?: string; hook?: string; tone?: string | null; ringer?: boolean } | undefined;
  const leds = Object.entries(status.leds ?? {}).map(([k, v]) => `${k}:${String(v)}`).join(' ') || '-';
  const call = status.call ? `${status.call.state} ${status.call.direction === 'outgoing' ? 'to' : 'from'} ${status.call.peer}${status.call.path ? ` via ${status.call.path}` : ''}, ${status.call.rtp.packetsReceived} packets in${status.call.mos ? `, MOS ${status.call.mos}` : ''}` : '-';
  return [
    `${name}`,
    `  handset  ${phone?.hook === 'off' ? 'lifted' : 'on hook'}${phone?.ringer ? '   ** RINGING **' : ''}`,
    `  state    ${phone?.state ?? '?'}${phone?.tone ? ` (${phone.tone} tone)` : ''}`,
    `  display  ${phone?.display ?? ''}`,
    `  LEDs     ${leds}`,
    `  call     ${call}`,
  ];
}

async function interactive(demo: Demo): Promise<void> {
  const out = process.stdout;
  let selected: DemoPhone = 'alice';
  const draw = (): void => {
    const lines = [
      'Partyline demo: a login server, a supernode with the sound test, two phones.',
      'Extensions: 201 alice, 202 bob, 300 sound test (plays you back after a second).',
      '',
      ...DEMO_PHONES.flatMap((p) => [...describePhone(`${p} (${p === 'alice' ? 201 : 202})${p === selected ? '   <- keypad' : ''}`, demo.status(p)), '']),
      `keys: a / b lift or replace a handset, Tab switch keypad, 0-9 * # dial, h hold, m mute, r redial, q quit`,
      `state and logs: ${demo.dir}`,
    ];
    out.write(out.isTTY ? `\x1b[2J\x1b[H${lines.join('\n')}\n` : `${lines.join(' | ')}\n`);
  };
  const toggle = (name: DemoPhone): void => {
    const phone = demo.phone(name);
    const hook = (demo.status(name).phone as { hook?: string } | undefined)?.hook;
    void phone.controls.invoke('hook', { state: hook === 'off' ? 'on' : 'off' }).catch(() => undefined);
  };
  const press = (key: string): void => {
    void demo.phone(selected).controls.invoke('keys', { keys: key }).catch(() => undefined);
  };
  await new Promise<void>((resolveDone) => {
    const timer = setInterval(draw, out.isTTY ? 250 : 5_000);
    draw();
    if (!process.stdin.isTTY) {
      // No terminal: show the phones now and then until interrupted.
      process.once('SIGINT', () => {
        clearInterval(timer);
        resolveDone();
      });
      process.once('SIGTERM', () => {
        clearInterval(timer);
        resolveDone();
      });
      return;
    }
    emitKeypressEvents(process.stdin);
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('keypress', (text: string | undefined, key: { name?: string; ctrl?: boolean }) => {
      if (key.name === 'q' || (key.ctrl && key.name === 'c')) {
        clearInterval(timer);
        process.stdin.setRawMode(false);
        process.stdin.pause();
        resolveDone();
        return;
      }
      if (key.name === 'tab') selected = selected === 'alice' ? 'bob' : 'alice';
      else if (key.name === 'a') toggle('alice');
      else if (key.name === 'b') toggle('bob');
      else if (key.name === 'h') press('hold');
      else if (key.name === 'm') press('mute');
      else if (key.name === 'r') press('redial');
      else if (text && /^[0-9*#]$/.test(text)) press(text);
      setTimeout(draw, 30);
    });
  });
}

/**
 * Script steps, one per line (# starts a comment):
 *
 *     alice hook off|on
 *     alice keys 202#
 *     wait bob ringing [TIMEOUT_MS]     the phone's state (idle, dialtone, ringback, ringing, in-call, held, busy-tone …)
 *     expect alice led line blink-fast
 *     expect alice media                packets are arriving in alice's call
 *     sleep 2000
 *
 * Each step prints `ok <step>` or `FAIL <step>: why`; the first failure ends the script.
 */
export async function runScript(demo: Demo, text: string, print: (line: string) => void): Promise<boolean> {
  const steps = text.split('\n').map((l) => l.replace(/#(?![0-9*#]*$).*$/, '').trim()).filter((l) => l.length > 0);
  for (const step of steps) {
    try {
      await runStep(demo, step);
      print(`ok ${step}`);
    } catch (err) {
      print(`FAIL ${step}: ${errorMessage(err)}`);
      return false;
    }
  }
  return true;
}

function phoneName(word: string | undefined): DemoPhone {
  if (word !== 'alice' && word !== 'bob') throw new Error(`no phone ${String(word)} (alice or bob)`);
  return word;
}

async function runStep(demo: Demo, step: string): Promise<void> {
  const words = step.split(/\s+/);
  const state = (name: DemoPhone): string | undefined => (demo.status(name).phone as { state?: string } | undefined)?.state;
  if (words[0] === 'sleep') {
    await sleep(Number(words[1] ?? 0));
    return;
  }
  if (words[0] === 'wait') {
    const name = phoneName(words[1]);
    const want = words[2];
    const deadline = Date.now() + Number(words[3] ?? 10_000);
    while (state(name) !== want) {
      if (Date.now() > deadline) throw new Error(`${name} is ${state(name)}, not ${want}`);
      await sleep(20);
    }
    return;
  }
  if (words[0] === 'expect') {
    const name = phoneName(words[1]);
    const status = demo.status(name);
    if (words[2] === 'led') {
      const actual = status.leds?.[words[3] ?? ''];
      if (actual !== words[4]) throw new Error(`${name}'s ${words[3]} LED is ${String(actual)}`);
      return;
    }
    if (words[2] === 'media') {
      const received = status.call?.rtp.packetsReceived ?? 0;
      if (received === 0) throw new Error(`${name} receives no media`);
      return;
    }
    if (words[2] === 'state') {
      if (state(name) !== words[3]) throw new Error(`${name} is ${state(name)}`);
      return;
    }
    throw new Error(`unknown expectation: ${words.slice(2).join(' ')}`);
  }
  const name = phoneName(words[0]);
  if (words[1] === 'hook' && (words[2] === 'off' || words[2] === 'on')) {
    await demo.phone(name).controls.invoke('hook', { state: words[2] });
    return;
  }
  if (words[1] === 'keys' && words[2]) {
    await demo.phone(name).controls.invoke('keys', { keys: words[2] });
    return;
  }
  throw new Error('unknown step');
}
