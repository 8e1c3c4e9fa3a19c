/**
 * Another process's resource use, read from /proc (Linux): resident memory
 * from /proc/<pid>/status, CPU time from /proc/<pid>/stat.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of the utime/stime fields (`getconf CLK_TCK`, 100 on Linux). */
export const CLK_TCK = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch (err) {
    process.stderr.write(`getconf CLK_TCK failed (${(err as Error).message}); assuming 100\n`);
    return 100;
  }
})();

/** VmRSS, its anonymous and file-backed parts, and VmHWM (peak RSS) of a process, in kB. */
export function memoryKb(pid: number): { rss: number; anon: number; file: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status: no ${name} line`);
    return Number(match[1]);
  };
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), peak: field('VmHWM') };
}

/** Samples a process's RSS every `everyMs` until stopped: average and maximum in kB. */
export class RssSampler {
  #pid: number;
  #sum = 0;
  #count = 0;
  #max = 0;
  #timer: NodeJS.Timeout;

  constructor(pid: number, everyMs = 1000) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    const { rss } = memoryKb(this.#pid);
    this.#sum += rss;
    this.#count++;
    this.#max = Math.max(this.#max, rss);
  }

  stop(): { avg: number; max: number; samples: number } {
    clearInterval(this.#timer);
    this.#sample();
    return { avg: this.#sum / this.#count, max: this.#max, samples: this.#count };
  }
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may contain spaces: count fields from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12]);
}

/** Measures a process's CPU use between `start()` and `percent()` (100 = one core). */
export class CpuMeter {
  readonly pid: number;
  #ticks = 0;
  #at = 0;

  constructor(pid: number) {
    this.pid = pid;
    this.start();
  }

  start(): void {
    this.#ticks = cpuTicks(this.pid);
    this.#at = performance.now();
  }

  /** CPU % since start(), and the CPU seconds used. */
  read(): { percent: number; cpuS: number; wallS: number } {
    const cpuS = (cpuTicks(this.pid) - this.#ticks) / CLK_TCK;
    const wallS = (performance.now() - this.#at) / 1000;
    return { percent: (100 * cpuS) / wallS, cpuS, wallS };
  }
}

/**
 * Whether a process looks hung: its CPU time did not move over `ms` while it
 * should be busy, with the main thread's kernel wait channel (`futex_wait…`
 * for a thread blocked on a lock) for the report.
 */
export async function hangCheck(pid: number, ms = 2000): Promise<{ hung: boolean; wchan: string; state: string }> {
  const before = cpuTicks(pid);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = cpuTicks(pid);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
  let wchan = '?';
  try {
    wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() || '0';
  } catch (err) {
    wchan = `unreadable (${(err as Error).message})`;
  }
  return { hung: after === before && state === 'S', wchan, state };
}
