/**
 * Reading one YAML configuration layer (a file or the provisioned overlay).
 *
 * The YAML AST is converted with the schema in hand so that plain scalars
 * keep their text where the schema expects a string: `password: 0123`,
 * `user: 1001` and extension `0100:` stay as written instead of becoming
 * numbers. An empty value (`key:`, `~`, `null`) means "not set here".
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import type { z } from 'zod';
import { childSchema, kindOf } from './introspect.js';
import type { ConfigPath } from './introspect.js';

export interface SourcePosition {
  line: number;
  col: number;
}

export interface YamlSource {
  /** Name used in messages: the file path as given, or a label. */
  name: string;
  /** The layer's settings; `{}` when the text could not be used. */
  data: Record<string, unknown>;
  /** Syntax and shape problems, already prefixed with name and position. */
  issues: string[];
  /** Position of the value (or the key) at `path`, when the text has it. */
  locate(path: ConfigPath, at?: 'key' | 'value'): SourcePosition | undefined;
}

export function parseYamlSource(text: string, name: string, schema: z.ZodType): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const position = (offset: number | undefined): SourcePosition | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset);
  const locate = (path: ConfigPath, at: 'key' | 'value' = 'value'): SourcePosition | undefined => {
    const found = findNode(doc, path);
    if (found === undefined) return undefined;
    const node = at === 'key' && found.pair ? found.pair.key : found.node;
    return position(rangeStart(node) ?? rangeStart(found.pair?.key));
  };

  if (doc.errors.length > 0) {
    const issues = doc.errors.map((err) => {
      const pos = err.linePos?.[0];
      const where = pos ? `${name}:${pos.line}:${pos.col}` : name;
      return `${where}: YAML syntax error: ${firstLine(err.message)}`;
    });
    return { name, data: {}, issues, locate };
  }
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    return { name, data: {}, issues: [], locate };
  }
  if (!isMap(contents)) {
    const pos = position(rangeStart(contents));
    const where = pos ? `${name}:${pos.line}:${pos.col}` : name;
    const got = isSeq(contents) ? 'a list' : isScalar(contents) ? JSON.stringify(contents.value) : 'something else';
    return { name, data: {}, issues: [`${where}: expected a map of settings at the top level, got ${got}`], locate };
  }
  return { name, data: toData(contents, schema, doc) as Record<string, unknown>, issues: [], locate };
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

function rangeStart(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: [number, number, number] | null }).range;
    return range?.[0];
  }
  return undefined;
}

function keyText(key: unknown): string {
  if (isScalar(key)) {
    if (typeof key.value === 'string') return key.value;
    if (typeof key.source === 'string' && key.type === 'PLAIN') return key.source;
    return String(key.value);
  }
  return String(key);
}

function toData(node: unknown, schema: z.ZodType | undefined, doc: Document): unknown {
  const target: unknown = isAlias(node) ? node.resolve(doc) : node;
  if (isMap(target)) {
    const out: Record<string, unknown> = {};
    for (const pair of target.items) {
      const key = keyText(pair.key);
      const child = childSchema(schema, key);
      const value = toData(pair.value, child, doc);
      // An empty value unsets a known key; an unknown key or a map entry stays
      // (as null) so that validation reports it instead of dropping a typo.
      if (value !== undefined) out[key] = value;
      else if (kindOf(schema) !== 'object' || child === undefined) out[key] = null;
    }
    return out;
  }
  if (isSeq(target)) {
    return target.items.map((item, i) => toData(item, childSchema(schema, i), doc));
  }
  if (isScalar(target)) {
    if (target.value === null) return undefined;
    if (
      kindOf(schema) === 'string' &&
      target.type === 'PLAIN' &&
      typeof target.value !== 'string' &&
      typeof target.source === 'string'
    ) {
      return target.source;
    }
    return target.value;
  }
  return undefined;
}

interface Found {
  node: YamlNode | null | undefined;
  pair?: Pair<unknown, unknown>;
}

function findNode(doc: Document, path: ConfigPath): Found | undefined {
  let found: Found = { node: doc.contents };
  for (const key of path) {
    const node: unknown = isAlias(found.node) ? found.node.resolve(doc) : found.node;
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && keyText(item.key) === String(key));
      if (pair === undefined) return undefined;
      found = { node: pair.value as YamlNode | null, pair };
    } else if (isSeq(node) && typeof key === 'number') {
      found = { node: node.items[key] as YamlNode | undefined };
    } else {
      return undefined;
    }
  }
  return found;
}
