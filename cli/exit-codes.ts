/**
 * Exit codes of the `ews-push-bridge` command and the error that carries one. Scripts and service
 * managers branch on these, so they are part of the CLI's contract.
 *
 * @packageDocumentation
 */
import { EwsBridgeError } from '../lib/index.js';

/** Exit codes: 0 ok, 1 anything else, 2 bad usage/config, 3 cannot authenticate, 4 cannot reach the server. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  auth: 3,
  unreachable: 4,
} as const;

/** One of {@link EXIT}'s values. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports with its message (written for a person) and ends with `exitCode`. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The `code` of a library error. Matched by code, not class, so it works across bundle copies. */
function codeOf(error: unknown): string | undefined {
  if (error instanceof EwsBridgeError) return error.code;
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/**
 * Turns an error that ended a command into a {@link CliError} with an exit code and a message
 * that says what to check. `endpoint` is the EWS URL as it may be shown (no credentials, no query).
 */
export function toCliError(error: unknown, endpoint: string): CliError {
  if (error instanceof CliError) return error;
  // Option validation in the library throws TypeError/RangeError naming the option.
  if (error instanceof TypeError || error instanceof RangeError) return new CliError(EXIT.usage, `Invalid setting: ${error.message}`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  switch (codeOf(error)) {
    case 'EWS_AUTH_FAILED':
      return new CliError(
        EXIT.auth,
        `Cannot authenticate to ${endpoint}: ${message}. Check the user name and the secret (environment variable or file), and that the account may use EWS (and impersonate the mailboxes, if set).`,
        { cause: error },
      );
    case 'EWS_CONNECTION_FAILED':
    case 'EWS_HEARTBEAT_TIMEOUT':
      return new CliError(EXIT.unreachable, `Cannot reach the EWS server at ${endpoint}: ${message}. Check the URL, DNS, firewall and TLS settings.`, {
        cause: error,
      });
    // EWS_PARSE_ERROR: XML, even SOAP, that is not the EWS answer asked for: the URL points at
    // something else (a portal, another SOAP service, a proxy's page).
    case 'EWS_HTTP_ERROR':
    case 'EWS_NOT_XML':
    case 'EWS_PARSE_ERROR':
      return new CliError(
        EXIT.unreachable,
        `The server at ${endpoint} did not answer as EWS: ${message}. The URL should end in /EWS/Exchange.asmx.`,
        { cause: error },
      );
    default:
      return new CliError(EXIT.failure, message, { cause: error });
  }
}
