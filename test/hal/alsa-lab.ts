/**
 * An ALSA lab without a sound card (../shared/LAB.md "Audio without a sound
 * card"): ALSA configuration files selected with `ALSA_CONFIG_PATH`, and a
 * JACK server on the dummy driver for real-time pacing.
 *
 * - `file` device: an `asym` PCM whose playback is a `type file` PCM over
 *   `null` (what is played lands in `out`, raw S16LE) and whose capture is a
 *   `type file` PCM with `infile` (raw S16LE read as the microphone). Not
 *   paced: it runs as fast as the reader and writer.
 * - `paced` device: the same with the `null` slaves replaced by a `type
 *   jack` PCM (behind a `plug`: JACK wants FLOAT) on a JACK server of this
 *   test file's own name (JACK_DEFAULT_SERVER), so test files running in
 *   parallel do not share one. The file PCM's rate must be the JACK
 *   server's (48 kHz): at any other rate PortAudio's device probe drops the
 *   PCM from its list (arecord still opens it), so the paced device is for
 *   48 kHz.
 *
 * `alsaLabAvailability()` says what is missing (naudiodon, the ALSA plugin
 * libraries, jackd); tests fail on it under CI and skip otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPortAudio } from '../../hal/audio/portaudio.js';

export interface Availability {
  ok: boolean;
  reason?: string;
}

const PLUGIN_DIRS = ['/usr/lib/x86_64-linux-gnu/alsa-lib', '/usr/lib/aarch64-linux-gnu/alsa-lib', '/usr/lib/arm-linux-gnueabihf/alsa-lib', '/usr/lib/alsa-lib'];

function which(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

function hasPlugin(file: string): boolean {
  return PLUGIN_DIRS.some((d) => existsSync(join(d, file)));
}

/** naudiodon loads and ALSA's file PCM exists (the unpaced tests). */
export function fileLabAvailability(): Availability {
  try {
    loadPortAudio();
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  if (!existsSync('/usr/share/alsa/alsa.conf')) return { ok: false, reason: '/usr/share/alsa/alsa.conf missing (Debian libasound2-data)' };
  return { ok: true };
}

/** Also jackd and ALSA's jack plugin (the paced tests). */
export function jackLabAvailability(): Availability {
  const base = fileLabAvailability();
  if (!base.ok) return base;
  if (!which('jackd') || !which('jack_lsp')) return { ok: false, reason: 'jackd or jack_lsp not found (Debian jackd2)' };
  if (!hasPlugin('libasound_module_pcm_jack.so')) return { ok: false, reason: 'ALSA jack plugin not found (Debian libasound2-plugins)' };
  return { ok: true };
}

export interface AlsaLabFiles {
  /** Raw S16LE mono read as the microphone. */
  infile: string;
  /** Raw S16LE mono: what was played. */
  outfile: string;
  rate: number;
}

function filePcm(slave: string, file: string, infile?: string): string {
  return `{
    type file
    slave.pcm ${slave}
    file "${file}"${infile ? `\n    infile "${infile}"` : ''}
    format "raw"
  }`;
}

/**
 * Write an ALSA configuration with `pcm.partyline_file` (unpaced) and, with
 * `jack`, `pcm.partyline_paced`; returns its path for ALSA_CONFIG_PATH.
 */
export function writeAlsaConfig(dir: string, files: AlsaLabFiles, jack = false): string {
  const { infile, outfile, rate } = files;
  let conf = `</usr/share/alsa/alsa.conf>

pcm.partyline_file {
  type asym
  playback.pcm { type plug slave { pcm ${filePcm('"null"', outfile)} format S16_LE rate ${rate} channels 1 } }
  capture.pcm { type plug slave { pcm ${filePcm('"null"', '/dev/null', infile)} format S16_LE rate ${rate} channels 1 } }
}
`;
  if (jack) {
    if (rate !== 48000) throw new Error(`paced ALSA lab: rate ${rate}, expected 48000 (the JACK server's)`);
    conf += `
pcm.partyline_jack {
  type plug
  slave.pcm {
    type jack
    playback_ports { 0 system:playback_1 }
    capture_ports { 0 system:capture_1 }
  }
}

pcm.partyline_paced {
  type asym
  playback.pcm { type plug slave { pcm ${filePcm('"partyline_jack"', outfile)} format S16_LE rate ${rate} channels 1 } }
  capture.pcm { type plug slave { pcm ${filePcm('"partyline_jack"', '/dev/null', infile)} format S16_LE rate ${rate} channels 1 } }
}
`;
  }
  const path = join(dir, 'asound.conf');
  writeFileSync(path, conf);
  return path;
}

export interface JackServer {
  name: string;
  process: ChildProcess;
  /**
   * SIGSTOP now and SIGCONT after `ms` from a separate process: while the
   * server is frozen a JACK client's open blocks this process's main thread,
   * so a timer here could never thaw it.
   */
  freezeFor(ms: number): void;
  stop(): Promise<void>;
}

/**
 * Start `jackd --no-realtime -d dummy -r RATE -p 256` under its own server
 * name and point this process's JACK clients at it (JACK_DEFAULT_SERVER,
 * JACK_NO_START_SERVER). Resolves once the server is up.
 */
export async function startJack(name: string, rate = 48000): Promise<JackServer> {
  const jackd = which('jackd');
  if (!jackd) throw new Error('jackd not found');
  process.env['JACK_DEFAULT_SERVER'] = name;
  process.env['JACK_NO_START_SERVER'] = '1';
  const child = spawn(jackd, ['-n', name, '--no-realtime', '-d', 'dummy', '-r', String(rate), '-p', '256'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, JACK_DEFAULT_SERVER: name },
  });
  let log = '';
  child.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Up means a client can connect and the dummy driver's ports exist (a
  // loaded machine can take seconds after jackd's banner; PortAudio leaves
  // out a device it cannot open when it enumerates).
  const lsp = which('jack_lsp')!;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`jackd exited (${child.exitCode}): ${log}`);
    const ports = spawnSync(lsp, ['-s', name], { encoding: 'utf8', timeout: 3000, env: { ...process.env, JACK_NO_START_SERVER: '1' } }).stdout ?? '';
    if (ports.includes('system:capture_1') && ports.includes('system:playback_1')) break;
    if (Date.now() > deadline) throw new Error(`jackd ${name} did not start (jack_lsp: ${JSON.stringify(ports)}): ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    process: child,
    freezeFor: (ms: number) => {
      spawn('sh', ['-c', `sleep ${ms / 1000}; kill -CONT ${child.pid}`], { stdio: 'ignore', detached: true }).unref();
      child.kill('SIGSTOP');
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
