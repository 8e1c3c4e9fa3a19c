import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/process.js';

/** Run `image/build.sh <target>` (rootfs or image), its output on this terminal; resolves with the time it took in ms. */
export function runImageBuild(target: 'rootfs' | 'image'): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('bash', [join(REPO_ROOT, 'image', 'build.sh'), target], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(Date.now() - started) : reject(new Error(`image/build.sh ${target} exited ${code}`))));
  });
}
