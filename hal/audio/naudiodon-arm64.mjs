#!/usr/bin/env node
/**
 * naudiodon on 64-bit ARM (Raspberry Pi OS / Debian arm64), solved in the
 * build: naudiodon 2.3.6's binding.gyp links x64 and armhf PortAudio
 * libraries it ships (portaudio/bin, portaudio/bin_armhf) and has no arm64
 * branch, so on arm64 its install script links the x64 library and fails
 * ("file in wrong format"), or leaves a module that cannot load.
 *
 * This script adds a `target_arch=="arm64"` branch to naudiodon's
 * binding.gyp that links Debian's PortAudio (`-l:libportaudio.so.2`,
 * package libportaudio2; the headers stay naudiodon's own, PortAudio's API
 * is the same v19) with no bundled library copied, then rebuilds naudiodon
 * (`npm rebuild naudiodon`, which runs its approved install script) and
 * checks that it loads. Idempotent; on other machines it does nothing.
 *
 *   node hal/audio/naudiodon-arm64.mjs            # after npm install, on arm64
 *   node hal/audio/naudiodon-arm64.mjs --patch-only [--force] [--dir DIR]
 *       # only patch binding.gyp (--force: on any architecture; --dir: a copy of naudiodon)
 *
 * On arm64 a plain `npm install`/`npm ci` fails in naudiodon's own install
 * script and npm rolls the tree back before any postinstall runs, so the
 * image build installs without scripts, patches, then builds:
 *   npm ci --ignore-scripts && node hal/audio/naudiodon-arm64.mjs --patch-only && npm rebuild
 * The driver itself never looks at the architecture.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';

const MARK = 'partyline-arm64';
const ARM64_BRANCH = `['target_arch=="arm64"', { # ${MARK}: Debian's libportaudio2, not a bundled library
                "cflags_cc!": [ "-fno-rtti", "-fno-exceptions" ],
                "cflags_cc": [ "-std=c++11", "-fexceptions" ],
                "link_settings": { "libraries": [ "-l:libportaudio.so.2" ] }
              }, 'target_arch=="arm"', {`;
const LIBS = ['/usr/lib/aarch64-linux-gnu/libportaudio.so.2', '/lib/aarch64-linux-gnu/libportaudio.so.2', '/usr/lib/libportaudio.so.2'];

const args = process.argv.slice(2);
const patchOnly = args.includes('--patch-only');
const force = args.includes('--force');
const dirArg = args.indexOf('--dir');

function fail(message) {
  console.error(`naudiodon-arm64: ${message}`);
  process.exit(1);
}

if (!force && !(process.platform === 'linux' && process.arch === 'arm64')) {
  console.log(`naudiodon-arm64: ${process.platform}/${process.arch}, nothing to do (naudiodon's bundled PortAudio fits)`);
  process.exit(0);
}

const require = createRequire(import.meta.url);
let dir = dirArg >= 0 ? args[dirArg + 1] : undefined;
if (dirArg < 0) {
  try { dir = dirname(require.resolve('naudiodon/package.json')); }
  catch { fail('naudiodon is not installed (on arm64: npm ci --ignore-scripts, then this script)'); }
}
if (!dir || !existsSync(join(dir, 'binding.gyp'))) fail(`no naudiodon binding.gyp in ${dir}`);
const gypPath = join(dir, 'binding.gyp');
const gyp = readFileSync(gypPath, 'utf8');
const root = dirname(dirname(dir)); // <project>/node_modules/naudiodon
const LOAD = "const p=require('naudiodon');console.log(p.getHostAPIs().HostAPIs.map(h=>h.name).join(','))";
const loads = () => spawnSync(process.execPath, ['-e', LOAD], { cwd: root, encoding: 'utf8' });
if (gyp.includes(MARK) && !patchOnly && loads().status === 0) {
  console.log(`naudiodon-arm64: already patched and naudiodon loads; nothing to rebuild`);
  process.exit(0);
}
if (gyp.includes(MARK)) {
  console.log(`naudiodon-arm64: ${gypPath} already links Debian's libportaudio2 on arm64`);
} else {
  const anchor = `['target_arch=="arm"', {`;
  if (gyp.split(anchor).length !== 2) fail(`${gypPath}: expected one ${anchor} condition (naudiodon 2.3.x); not patched`);
  writeFileSync(gypPath, gyp.replace(anchor, ARM64_BRANCH));
  console.log(`naudiodon-arm64: ${gypPath}: arm64 links Debian's libportaudio2`);
}
if (patchOnly) process.exit(0);

if (!LIBS.some((p) => existsSync(p))) fail('libportaudio.so.2 not found: apt-get install libportaudio2');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// segfault-handler: naudiodon's index.js requires it; unbuilt after --ignore-scripts
const rebuild = spawnSync(npm, ['rebuild', 'naudiodon', 'segfault-handler', '--foreground-scripts'], { cwd: root, stdio: 'inherit' });
if (rebuild.status !== 0) fail(`npm rebuild naudiodon failed (${rebuild.status ?? rebuild.signal})`);
const check = loads();
if (check.status !== 0) fail(`naudiodon still does not load: ${check.stderr}`);
console.log(`naudiodon-arm64: naudiodon loads (host APIs: ${check.stdout.trim().split('\n').pop()})`);
