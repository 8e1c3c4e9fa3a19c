import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';

/** Starts a command: plain `spawn`, or inside a network namespace (NetLab.spawn). */
export type Launcher = (command: string, args: string[], options: SpawnOptions) => ChildProcess;
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (works from test/ and from dist/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above test helpers');
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = repoRoot();
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Spawned {
  child: ChildProcess;
  /** Parsed JSON log lines seen so far. */
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolve with the first log line matching, or reject after timeoutMs. */
  waitFor: (match: (line: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Run the built `partyline` CLI as a separate process, collecting its JSON log lines. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, launch: Launcher = spawn): Spawned {
  return collectLogs(launch(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** Collect the JSON log lines of a started partyline process (its stdout and stderr piped). */
export function collectLogs(child: ChildProcess): Spawned {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const text of parts) {
      if (!text.trim()) continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text, raw: true };
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    waitFor(match, timeoutMs = 10_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-500)}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        void exited.then((code) => {
          clearTimeout(timer);
          // Why it stopped is usually its last log lines (a fatal error is logged as JSON on stdout).
          const last = lines.slice(-3).map((l) => JSON.stringify(l)).join(' | ');
          reject(new Error(`process exited (${code}) before the log line; last log lines: ${last.slice(-1500)}; stderr: ${stderr.slice(-500)}`));
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
