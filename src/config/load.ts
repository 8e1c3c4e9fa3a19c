/**
 * Layered configuration loading, lowest first:
 *
 *   1. defaults        from the schema
 *   2. file            `--config FILE` (or $PARTYLINE_CONFIG), YAML
 *   3. overlay         `<stateDir>/provisioned.yaml`, written by provisioning
 *   4. environment     PARTYLINE_* variables (see env.ts for the mapping)
 *
 * Objects merge key by key; lists and maps replace. The state directory is
 * resolved from file and environment first (the overlay cannot move it),
 * then the overlay is read from it. The merged result is validated once and
 * every problem is reported together, each naming its layer:
 *
 *   config.yaml:7:5: network.bootstrap[1]: expected "host:port", got "10.0.0.1"
 *   PARTYLINE_NODE__PORT: node.port: expected an integer 0..65535, got 70000
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, errorMessage } from '../errors.js';
import { CONFIG_FILE_ENV, configFromEnv } from './env.js';
import { getAt, leafPaths } from './introspect.js';
import { resolveConfigPaths, resolveStateDir } from './paths.js';
import { parseProvisionedOverlay, provisionedOverlayPath } from './provisioned.js';
import { configSchema } from './schema.js';
import type { Config } from './schema.js';
import { layerData, summarise, validateLayers } from './validate.js';
import type { Layer } from './validate.js';
import { parseYamlSource } from './yaml-source.js';

export interface LoadConfigOptions {
  /** YAML configuration file (`--config FILE`). Default: $PARTYLINE_CONFIG; none: defaults only. */
  file?: string;
  /** Environment to read PARTYLINE_* variables from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Provisioned overlay to read instead of `<stateDir>/provisioned.yaml`; false = none. */
  overlayFile?: string | false;
  /** Base for relative paths. Default: process.cwd(). */
  cwd?: string;
  /** Whether to use root's default state directory. Default: uid is 0. */
  isRoot?: boolean;
}

export type ConfigLayerKind = 'defaults' | 'file' | 'overlay' | 'env';

export interface ConfigSource {
  layer: ConfigLayerKind;
  /** `defaults`, the file path, or `environment`. */
  name: string;
  /** Dotted keys this layer set (lists and maps count as one key). */
  paths: string[];
  /** For the environment layer: the variables used. */
  variables?: string[];
}

export interface LoadedConfig {
  config: Config;
  /** Layers that contributed, lowest first. */
  sources: ConfigSource[];
}

type ReadResult = { text: string } | { issue: string } | { missing: true };

async function readText(path: string): Promise<ReadResult> {
  try {
    return { text: await readFile(path, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { issue: `${path}: cannot read: ${errorMessage(err)}` };
  }
}

/** Load, merge and validate every layer. Throws ConfigError listing every problem. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const ctx = {
    env,
    cwd: options.cwd ?? process.cwd(),
    isRoot: options.isRoot ?? process.getuid?.() === 0,
  };
  const file = options.file ?? (env[CONFIG_FILE_ENV] || undefined);
  const issues: string[] = [];
  const layers: Layer[] = [];
  const sources: ConfigSource[] = [{ layer: 'defaults', name: 'defaults', paths: [] }];

  if (file !== undefined) {
    const read = await readText(file);
    if ('text' in read) {
      const source = parseYamlSource(read.text, file, configSchema);
      issues.push(...source.issues);
      layers.push({ kind: 'file', source });
      sources.push({ layer: 'file', name: file, paths: leafPaths(source.data, configSchema) });
    } else {
      issues.push('issue' in read ? read.issue : `${file}: cannot read: no such file`);
    }
  }

  const envLayer = configFromEnv(env, configSchema);
  issues.push(...envLayer.issues);

  // The overlay lives in the state directory, so only file and environment can move it.
  const fileData = layers[0] === undefined ? {} : layerData(layers[0]);
  const configuredStateDir = getAt(envLayer.data, ['node', 'stateDir']) ?? getAt(fileData, ['node', 'stateDir']);
  const overlayFile = options.overlayFile ?? provisionedOverlayPath(resolveStateDir(configuredStateDir, ctx));
  if (overlayFile !== false) {
    const read = await readText(overlayFile);
    if ('text' in read) {
      const source = parseProvisionedOverlay(read.text, overlayFile);
      issues.push(...source.issues);
      layers.push({ kind: 'overlay', source });
      sources.push({ layer: 'overlay', name: overlayFile, paths: leafPaths(source.data, configSchema) });
    } else if ('issue' in read) {
      issues.push(read.issue);
    }
  }

  layers.push({ kind: 'env', env: envLayer });
  if (envLayer.origins.length > 0) {
    sources.push({
      layer: 'env',
      name: 'environment',
      paths: leafPaths(envLayer.data, configSchema),
      variables: envLayer.origins.map((o) => o.name),
    });
  }

  const result = validateLayers(layers);
  issues.push(...result.issues);
  if (issues.length > 0 || result.config === undefined) {
    throw new ConfigError(summarise('invalid configuration', issues), issues);
  }
  return { config: resolveConfigPaths(result.config, ctx), sources };
}

/**
 * Problems in one configuration file's text, checked on its own on top of
 * the defaults (no overlay, no environment): what `partyline config check
 * FILE` prints. Empty when valid.
 */
export function validateConfigText(text: string, sourceName: string): string[] {
  const source = parseYamlSource(text, sourceName, configSchema);
  if (source.issues.length > 0) return source.issues;
  return validateLayers([{ kind: 'file', source }]).issues;
}

/** `validateConfigText` for a file on disk; an unreadable file is one issue. */
export async function checkConfigFile(path: string): Promise<string[]> {
  const read = await readText(path);
  if ('text' in read) return validateConfigText(read.text, path);
  return ['issue' in read ? read.issue : `${path}: cannot read: no such file`];
}
