/**
 * The schema as documentation: every leaf key with its type, default,
 * description and environment variable, for `partyline config schema`
 * (`--json` prints describeSchema(); configJsonSchema() suits editors).
 */
import { z } from 'zod';
import { envVarName } from './env.js';
import { configSchema, SECRET_CONFIG_PATHS } from './schema.js';

export interface ConfigKeyInfo {
  /** Dotted path, e.g. `network.bootstrap`. */
  path: string;
  /** Readable type, e.g. `integer 0..65535`, `list of host:port`, `"sim" | "hid"`. */
  type: string;
  /** Default value; undefined when the key is optional without a default. */
  default: unknown;
  description: string;
  secret: boolean;
  /** Environment variable that sets it. */
  env: string;
}

type JsonSchema = Record<string, unknown>;

/** JSON Schema (draft 2020-12) of what a configuration file may hold. */
export function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

export function describeSchema(): ConfigKeyInfo[] {
  const root = configJsonSchema();
  const defs = (root.$defs ?? {}) as Record<string, JsonSchema>;
  const deref = (node: JsonSchema): JsonSchema => {
    const ref = node.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
      const target = defs[ref.slice('#/$defs/'.length)] ?? {};
      const { $ref: _ignored, ...rest } = node;
      return { ...deref(target), ...rest };
    }
    return node;
  };
  const out: ConfigKeyInfo[] = [];
  const walk = (node: JsonSchema, path: string[]): void => {
    const schema = deref(node);
    const properties = schema.properties as Record<string, JsonSchema> | undefined;
    if (schema.type === 'object' && properties !== undefined) {
      for (const [key, child] of Object.entries(properties)) walk(child, [...path, key]);
      return;
    }
    const dotted = path.join('.');
    out.push({
      path: dotted,
      type: typeName(schema, deref),
      default: schema.default,
      description: typeof schema.description === 'string' ? schema.description : '',
      secret: SECRET_CONFIG_PATHS.has(dotted),
      env: envVarName(path),
    });
  };
  walk(root, []);
  return out;
}

function range(schema: JsonSchema): string {
  const { minimum: min, maximum: max } = schema;
  if (typeof min === 'number' && typeof max === 'number' && max < Number.MAX_SAFE_INTEGER) return ` ${min}..${max}`;
  if (typeof min === 'number') return ` >= ${min}`;
  if (typeof max === 'number') return ` <= ${max}`;
  return '';
}

function typeName(schema: JsonSchema, deref: (s: JsonSchema) => JsonSchema): string {
  if (typeof schema.format === 'string') return schema.format;
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map((s) => typeName(deref(s), deref)).join(' | ');
  switch (schema.type) {
    case 'integer':
      return `integer${range(schema)}`;
    case 'number':
      return `number${range(schema)}`;
    case 'array':
      return `list of ${typeName(deref((schema.items ?? {}) as JsonSchema), deref)}`;
    case 'object': {
      const keys = deref((schema.propertyNames ?? {}) as JsonSchema);
      const values = deref((schema.additionalProperties ?? {}) as JsonSchema);
      return `map of ${typeName(keys, deref)} to ${typeName(values, deref)}`;
    }
    case undefined:
      return 'any';
    default:
      return String(schema.type);
  }
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** A readable listing of every key, grouped by section. */
export function formatSchema(keys: readonly ConfigKeyInfo[] = describeSchema()): string {
  const lines = [
    'Partyline configuration keys.',
    'Layers, lowest first: defaults < --config FILE (YAML) < <stateDir>/provisioned.yaml < PARTYLINE_* variables.',
  ];
  let section = '';
  for (const key of keys) {
    const top = key.path.split('.')[0] ?? '';
    if (top !== section) {
      section = top;
      lines.push('', `[${section}]`);
    }
    const value = key.default === undefined ? 'optional' : `default ${JSON.stringify(key.default)}`;
    lines.push(`${key.path}: ${key.type}; ${value}${key.secret ? '; secret' : ''}`);
    lines.push(...wrap(key.description, 80, '    '));
    lines.push(`    env ${key.env}`);
  }
  return `${lines.join('\n')}\n`;
}
