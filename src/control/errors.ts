import { PartylineError } from '../errors.js';

/**
 * The local control API failed. Stable codes:
 *
 * - `ERR_CONTROL_UNKNOWN_COMMAND` no handler of that name (message lists the available ones)
 * - `ERR_CONTROL_ARGS`            the arguments do not match the command's schema (`path: expected X, got Y`)
 * - `ERR_CONTROL_REQUEST`         a request line is not valid JSON or not a valid request
 * - `ERR_CONTROL_VERSION`         a request names a protocol version this node does not speak
 * - `ERR_CONTROL_LINE_TOO_LONG`   a line is over the limit; the connection is closed
 * - `ERR_CONTROL_PROTOCOL`        the node's answer is not a valid response (client side)
 * - `ERR_CONTROL_DUPLICATE_COMMAND` / `ERR_CONTROL_COMMAND_NAME` programming errors at registration
 * - `ERR_CONTROL_IN_USE`          another process is serving the socket path
 * - `ERR_CONTROL_NOT_SOCKET`      the socket path exists and is not a socket
 * - `ERR_CONTROL_PATH_TOO_LONG`   the path does not fit in a Unix socket address
 * - `ERR_CONTROL_LISTEN`          the socket cannot be created (permissions, missing directory ...)
 * - `ERR_CONTROL_UNREACHABLE`     nothing listens on the path (client side)
 * - `ERR_CONTROL_PERMISSION`      the socket exists but this user may not connect (client side)
 * - `ERR_CONTROL_CONNECT`         any other failure to connect (client side)
 * - `ERR_CONTROL_CLOSED`          the connection closed before the answer came
 */
export class ControlError extends PartylineError {
  constructor(code: `ERR_CONTROL_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The node answered a control request with an error: `code` and `message`
 * are the node's own (e.g. `ERR_CONTROL_ARGS`, `ERR_INTERNAL`, or a handler's
 * `ERR_CALL_BUSY`).
 */
export class ControlRemoteError extends PartylineError {
  readonly command: string;

  constructor(command: string, code: string, message: string) {
    super(code, message);
    this.command = command;
  }
}

/** A handler failed with something other than a PartylineError: a bug, logged at the node. */
export const ERR_INTERNAL = 'ERR_INTERNAL';
