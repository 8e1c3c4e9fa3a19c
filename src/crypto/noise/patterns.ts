/**
 * Handshake patterns (Noise section 7): the 15 fundamental interactive and
 * one-way patterns, written in the spec's own arrow notation and parsed
 * once at load time.
 */

/** A message-pattern token (section 7.1). PSK tokens are not supported. */
export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';

export type HandshakePattern =
  | 'N' | 'K' | 'X'
  | 'NN' | 'NK' | 'NX'
  | 'KN' | 'KK' | 'KX'
  | 'XN' | 'XK' | 'XX'
  | 'IN' | 'IK' | 'IX';

export interface PatternDefinition {
  readonly name: HandshakePattern;
  /** Static keys known to the other side before the handshake (pre-messages; only `s` is supported). */
  readonly initiatorPreMessage: readonly 's'[];
  readonly responderPreMessage: readonly 's'[];
  /** Message i is written by the initiator when i is even, by the responder when odd. */
  readonly messages: readonly (readonly Token[])[];
  /** One-way patterns (N, K, X): after the handshake only the initiator sends. */
  readonly oneWay: boolean;
}

interface Notation {
  pre?: readonly string[];
  messages: readonly string[];
}

const NOTATION: Readonly<Record<HandshakePattern, Notation>> = {
  N: { pre: ['<- s'], messages: ['-> e, es'] },
  K: { pre: ['-> s', '<- s'], messages: ['-> e, es, ss'] },
  X: { pre: ['<- s'], messages: ['-> e, es, s, ss'] },
  NN: { messages: ['-> e', '<- e, ee'] },
  NK: { pre: ['<- s'], messages: ['-> e, es', '<- e, ee'] },
  NX: { messages: ['-> e', '<- e, ee, s, es'] },
  KN: { pre: ['-> s'], messages: ['-> e', '<- e, ee, se'] },
  KK: { pre: ['-> s', '<- s'], messages: ['-> e, es, ss', '<- e, ee, se'] },
  KX: { pre: ['-> s'], messages: ['-> e', '<- e, ee, se, s, es'] },
  XN: { messages: ['-> e', '<- e, ee', '-> s, se'] },
  XK: { pre: ['<- s'], messages: ['-> e, es', '<- e, ee', '-> s, se'] },
  XX: { messages: ['-> e', '<- e, ee, s, es', '-> s, se'] },
  IN: { messages: ['-> e, s', '<- e, ee, se'] },
  IK: { pre: ['<- s'], messages: ['-> e, es, s, ss', '<- e, ee, se'] },
  IX: { messages: ['-> e, s', '<- e, ee, se, s, es'] },
};

const TOKENS: ReadonlySet<string> = new Set<Token>(['e', 's', 'ee', 'es', 'se', 'ss']);

function parseLine(line: string): { fromInitiator: boolean; tokens: Token[] } {
  const match = /^(->|<-) (.+)$/.exec(line);
  if (match === null) throw new Error(`handshake pattern line ${JSON.stringify(line)}: expected "-> tokens" or "<- tokens"`);
  const tokens = (match[2] ?? '').split(', ');
  for (const token of tokens) {
    if (!TOKENS.has(token)) throw new Error(`handshake pattern line ${JSON.stringify(line)}: unknown token ${JSON.stringify(token)}`);
  }
  return { fromInitiator: match[1] === '->', tokens: tokens as Token[] };
}

function parse(name: HandshakePattern, notation: Notation): PatternDefinition {
  const initiatorPreMessage: 's'[] = [];
  const responderPreMessage: 's'[] = [];
  for (const line of notation.pre ?? []) {
    const { fromInitiator, tokens } = parseLine(line);
    if (tokens.some((token) => token !== 's')) throw new Error(`handshake pattern ${name}: only "s" is supported in pre-messages`);
    (fromInitiator ? initiatorPreMessage : responderPreMessage).push(...(tokens as 's'[]));
  }
  const messages = notation.messages.map((line, i) => {
    const { fromInitiator, tokens } = parseLine(line);
    if (fromInitiator !== (i % 2 === 0)) throw new Error(`handshake pattern ${name}: message ${i} is out of turn`);
    return tokens;
  });
  return { name, initiatorPreMessage, responderPreMessage, messages, oneWay: messages.length === 1 };
}

const PATTERNS = new Map<string, PatternDefinition>(
  (Object.keys(NOTATION) as HandshakePattern[]).map((name) => [name, parse(name, NOTATION[name])]),
);

/** Names of the supported handshake patterns. */
export const HANDSHAKE_PATTERNS: readonly HandshakePattern[] = [...PATTERNS.keys()] as HandshakePattern[];

/** The definition of a pattern, or undefined if it is not supported. */
export function lookupPattern(name: string): PatternDefinition | undefined {
  return PATTERNS.get(name);
}

/** Full protocol name, e.g. Noise_XX_25519_ChaChaPoly_SHA256. */
export function protocolName(pattern: HandshakePattern): string {
  return `Noise_${pattern}_25519_ChaChaPoly_SHA256`;
}
