#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerConfigCommand } from './config-command.js';
import { registerCtlCommand } from './ctl-command.js';
import { registerLoginServerCommand } from './login-server-command.js';
import { registerProvisionCommand } from './provision-command.js';
import { registerStartCommand } from './start-command.js';
import { registerUserCommand } from './user-command.js';
import { registerDemoCommand } from './demo-command.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('partyline')
    .description('Partyline: peer-to-peer desk-phone firmware (ordinary nodes, supernodes, login server)')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .enablePositionalOptions();
  registerStartCommand(program);
  registerConfigCommand(program);
  registerUserCommand(program);
  registerCtlCommand(program);
  registerLoginServerCommand(program);
  registerProvisionCommand(program);
  registerDemoCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`partyline: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
