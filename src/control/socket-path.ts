import { ControlError } from './errors.js';

/**
 * Longest Unix socket path the kernel takes, in bytes: `sun_path` is 108
 * bytes on Linux (104 on the BSDs and macOS) including the terminating NUL.
 * A longer path fails with an obscure EINVAL/ENAMETOOLONG, or is silently
 * truncated by older runtimes, so we check it first.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Throws `ERR_CONTROL_PATH_TOO_LONG` naming the path and the limit. */
export function checkSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ControlError(
      'ERR_CONTROL_PATH_TOO_LONG',
      `control socket path is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte limit of Unix socket paths: ${path} ` +
        '(set node.control, or --socket, to a shorter path)',
    );
  }
}
