import type { Command } from 'commander';
import { checkConfigFile } from '../config/load.js';
import { configJsonSchema, describeSchema, formatSchema } from '../config/describe.js';

/**
 * `partyline config check FILE` — validate a file, print every mistake with its path.
 * `partyline config schema [--json]` — every key with its type, default and description.
 */
export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('check configuration files and list every key');

  config.command('check')
    .description('validate a configuration file; prints every mistake and exits non-zero if there is one')
    .argument('<file>', 'YAML configuration file')
    .action(async (file: string) => {
      const issues = await checkConfigFile(file);
      if (issues.length === 0) {
        process.stdout.write(`${file}: ok\n`);
        return;
      }
      process.stderr.write(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`);
      for (const issue of issues) process.stderr.write(`  ${issue}\n`);
      process.exitCode = 1;
    });

  config.command('schema')
    .description('print every configuration key with its type, default and description')
    .option('--json', 'print the keys as JSON')
    .option('--json-schema', 'print a JSON Schema (for editors)')
    .action((options: { json?: boolean; jsonSchema?: boolean }) => {
      if (options.jsonSchema) process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      else if (options.json) process.stdout.write(`${JSON.stringify(describeSchema(), null, 2)}\n`);
      else process.stdout.write(formatSchema());
    });
}
