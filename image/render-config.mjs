#!/usr/bin/env node
/**
 * Writes the image's /etc/partyline/config.yaml: image/files/config.template.yaml
 * with the build's settings from the environment, or a whole file of the
 * operator's (PARTYLINE_IMAGE_CONFIG). image/build.sh then checks the result
 * with `partyline config check`.
 *
 *   node image/render-config.mjs OUT
 *
 *   PARTYLINE_IMAGE_CONFIG     a complete config.yaml to use instead of the template
 *   PARTYLINE_IMAGE_NAME       node.name
 *   PARTYLINE_IMAGE_NETWORK    network.name
 *   PARTYLINE_IMAGE_LOGIN      network.loginServer.address (host:port)
 *   PARTYLINE_IMAGE_LOGIN_KEY  network.loginServer.publicKey
 *   PARTYLINE_IMAGE_BOOTSTRAP  network.bootstrap, comma-separated host:port
 *   PARTYLINE_IMAGE_ROLE       phone (default) | supernode: supernode.policy never | always,
 *                              and a supernode box keeps the simulated HAL drivers
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';

const out = process.argv[2];
if (!out) {
  console.error('usage: render-config.mjs OUT');
  process.exit(2);
}
const env = process.env;
if (env.PARTYLINE_IMAGE_CONFIG) {
  writeFileSync(out, readFileSync(env.PARTYLINE_IMAGE_CONFIG, 'utf8'));
  process.exit(0);
}
const templatePath = new URL('./files/config.template.yaml', import.meta.url);
const template = readFileSync(templatePath, 'utf8');
const config = parse(template);
if (env.PARTYLINE_IMAGE_NAME) config.node.name = env.PARTYLINE_IMAGE_NAME;
if (env.PARTYLINE_IMAGE_NETWORK) config.network.name = env.PARTYLINE_IMAGE_NETWORK;
if (env.PARTYLINE_IMAGE_LOGIN) config.network.loginServer.address = env.PARTYLINE_IMAGE_LOGIN;
if (env.PARTYLINE_IMAGE_LOGIN_KEY) config.network.loginServer.publicKey = env.PARTYLINE_IMAGE_LOGIN_KEY;
if (Object.keys(config.network.loginServer).length === 0) delete config.network.loginServer;
if (env.PARTYLINE_IMAGE_BOOTSTRAP) config.network.bootstrap = env.PARTYLINE_IMAGE_BOOTSTRAP.split(',').map((s) => s.trim()).filter(Boolean);
const role = env.PARTYLINE_IMAGE_ROLE ?? 'phone';
if (role === 'supernode') {
  config.node.name = env.PARTYLINE_IMAGE_NAME ?? 'partyline supernode';
  config.supernode = { policy: 'always', ports: [443, 80] };
  delete config.hal;
} else if (role !== 'phone') {
  console.error(`PARTYLINE_IMAGE_ROLE: expected phone or supernode, got ${JSON.stringify(role)}`);
  process.exit(2);
}
const header = template.split('\n').filter((l) => l.startsWith('#')).join('\n');
writeFileSync(out, `${header}\n${stringify(config)}`);
