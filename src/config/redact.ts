import { getAt, isPlainObject, setAt } from './introspect.js';
import { SECRET_CONFIG_PATHS } from './schema.js';

export const REDACTED = '***';

/**
 * A deep copy of a configuration (full, partial, or a provisioning payload)
 * with every secret key that is set replaced by "***", and the password in
 * a broker URL's user info (`mqtt://user:secret@host`) masked too.
 */
export function redactConfig<T>(config: T): T {
  const copy = structuredClone(config);
  if (!isPlainObject(copy)) return copy;
  for (const dotted of SECRET_CONFIG_PATHS) {
    const path = dotted.split('.');
    if (getAt(copy, path) !== undefined) setAt(copy, path, REDACTED);
  }
  const url = getAt(copy, ['provisioning', 'mqtt', 'url']);
  if (typeof url === 'string') setAt(copy, ['provisioning', 'mqtt', 'url'], redactUrl(url));
  return copy;
}

/** Mask the password of a URL's user info; other text is returned unchanged. */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not a URL: nothing structured to mask.
    return text;
  }
  if (url.password === '') return text;
  url.password = REDACTED;
  return url.toString();
}
