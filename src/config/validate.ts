/**
 * Merging the layers and validating the result once, with every problem
 * attributed to the layer it came from (file and line, or variable name).
 */
import { configSchema } from './schema.js';
import type { ParsedConfig } from './schema.js';
import { formatPath, getAt, mergeLayer } from './introspect.js';
import type { ConfigPath } from './introspect.js';
import { explainIssue, formatProblem } from './issues.js';
import type { ConfigProblem } from './issues.js';
import type { EnvLayer } from './env.js';
import type { YamlSource } from './yaml-source.js';

export type Layer =
  | { kind: 'file' | 'overlay'; source: YamlSource }
  | { kind: 'env'; env: EnvLayer }
  | { kind: 'data'; name: string; data: Record<string, unknown> };

export interface Validated {
  /** Present when there were no problems. */
  config?: ParsedConfig;
  issues: string[];
}

export function layerData(layer: Layer): Record<string, unknown> {
  switch (layer.kind) {
    case 'env':
      return layer.env.data;
    case 'data':
      return layer.data;
    default:
      return layer.source.data;
  }
}

/** Merge lowest-first layers (objects merge, lists and maps replace) and validate once. */
export function validateLayers(layers: readonly Layer[]): Validated {
  const merged = layers.reduce<unknown>((acc, layer) => mergeLayer(acc, layerData(layer), configSchema), {});
  const result = configSchema.safeParse(merged);
  if (result.success) return { config: result.data, issues: [] };
  const issues = result.error.issues
    .flatMap((issue) => explainIssue(issue, merged, configSchema))
    .map((problem) => attribute(problem, layers));
  return { issues };
}

const isPrefix = (prefix: ConfigPath, path: ConfigPath): boolean =>
  prefix.length <= path.length && prefix.every((key, i) => String(key) === String(path[i]));

/**
 * Name the layer a problem comes from: the highest layer holding the value at
 * the problem's path (or, failing that, at the nearest enclosing path).
 */
function attribute(problem: ConfigProblem, layers: readonly Layer[]): string {
  const line = `${formatPath(problem.path)}: ${problem.text}`;
  for (let length = problem.path.length; length > 0; length--) {
    const path = problem.path.slice(0, length);
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i];
      if (layer === undefined) continue;
      if (layer.kind === 'env') {
        const origin = layer.env.origins.find((o) => isPrefix(o.path, path) || isPrefix(path, o.path));
        if (origin !== undefined) return `${origin.name}: ${line}`;
      } else if (getAt(layerData(layer), path) !== undefined) {
        if (layer.kind === 'data') return layer.name === '' ? line : `${layer.name}: ${line}`;
        const at = length === problem.path.length ? problem.at : 'value';
        const pos = layer.source.locate(path, at);
        return pos ? `${layer.source.name}:${pos.line}:${pos.col}: ${line}` : `${layer.source.name}: ${line}`;
      }
    }
  }
  return problem.path.length === 0 ? problem.text : formatProblem(problem);
}

/** One message for a ConfigError: a summary line and every issue indented. */
export function summarise(what: string, issues: readonly string[]): string {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return [`${what}: ${count}`, ...issues.map((issue) => `  ${issue}`)].join('\n');
}
