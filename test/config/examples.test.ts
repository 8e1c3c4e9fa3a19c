import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeSchema } from '../../src/config/describe.js';
import { checkConfigFile, loadConfig } from '../../src/config/load.js';

const configDir = fileURLToPath(new URL('../../config/', import.meta.url));
const env = { STATE_DIRECTORY: '/nonexistent/partyline-test' };

describe('config/ examples', async () => {
  const files = (await readdir(configDir)).filter((f) => f.endsWith('.yaml'));

  it('include default.yaml and a phone example', () => {
    expect(files).toContain('default.yaml');
    expect(files).toContain('phone.example.yaml');
  });

  it.each(files)('%s validates', async (file) => {
    expect(await checkConfigFile(configDir + file)).toEqual([]);
  });

  it('default.yaml holds exactly the built-in defaults', async () => {
    const withFile = await loadConfig({ file: `${configDir}default.yaml`, env });
    const without = await loadConfig({ env });
    expect(withFile.config).toEqual(without.config);
  });

  it('default.yaml mentions every key', async () => {
    const text = await readFile(`${configDir}default.yaml`, 'utf8');
    for (const { path } of describeSchema()) {
      const leaf = path.split('.').pop() ?? path;
      expect(text, path).toMatch(new RegExp(`^\\s*#? ?${leaf}:`, 'm'));
    }
  });
});
