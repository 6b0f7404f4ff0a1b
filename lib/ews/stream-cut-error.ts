import { EwsConnectionError } from '../errors.js';

/**
 * A response ended without its HTTP end: the socket was reset or closed by the server, a proxy or
 * the network. `midEnvelope` tells whether a partly received envelope was lost with it (the
 * envelopes completed before the cut were all delivered).
 */
export class EwsStreamCutError extends EwsConnectionError {
  /** Whether bytes of an unfinished envelope were pending when the connection went away. */
  readonly midEnvelope: boolean;
  constructor(message: string, options: { midEnvelope: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.midEnvelope = options.midEnvelope;
  }
}
