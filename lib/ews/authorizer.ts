/**
 * The seam between the transport and an authentication scheme: an {@link Authorizer} produces
 * `Authorization` header values round by round. Its own module so that the schemes (`ntlm.ts`,
 * `negotiate.ts`) and the dispatcher that picks one (`auth-header.ts`) all depend on it, and not on
 * each other in a circle.
 *
 * @packageDocumentation
 */
import type { Socket } from 'node:net';

/** What an {@link Authorizer} learns about the call it authenticates. */
export interface AuthContext {
  /** The endpoint (its host names the service: `HTTP/<host>`). */
  readonly url: URL;
  /**
   * The connection the last response arrived on, which (for a connection-bound scheme) carries
   * the next round: its TLS certificate is what a channel binding binds to. `undefined` before
   * the first round.
   */
  readonly socket: Socket | undefined;
}

/**
 * Produces `Authorization` header values for one request, round by round.
 *
 * Round 0 is {@link Authorizer.initial}; every HTTP 401 then calls {@link Authorizer.challenge} with
 * the response's `WWW-Authenticate` values, and a returned header is sent on a retry of the same
 * request. One-shot schemes answer the challenge with `undefined` (fail) or a refreshed credential;
 * a connection-bound handshake (NTLM's negotiate → challenge → authenticate) answers with its next
 * message.
 */
export interface Authorizer {
  /** The header for the first attempt, or `undefined` to send none. */
  initial(context: AuthContext): Promise<string | undefined>;
  /**
   * Called on HTTP 401. Returns the header for one more attempt, or `undefined` to give up
   * (the transport then fails with `EwsAuthError`).
   *
   * @param wwwAuthenticate - The response's `WWW-Authenticate` values.
   * @param round - 1 for the first 401 of this request, 2 for the second, ….
   * @param context - The call: its URL and the connection the 401 came on.
   */
  challenge(wwwAuthenticate: readonly string[], round: number, context: AuthContext): Promise<string | undefined>;
  /**
   * Schemes that keep state across the rounds of one request (a GSSAPI context) return a fresh
   * authorizer for each call here; the transport uses it for that call only. Default: the
   * authorizer itself serves every call.
   */
  forCall?(): Authorizer;
  /**
   * Set by schemes that authenticate a connection rather than a request (NTLM). The transport then
   * runs every request on a connection of its own, sends round 0 (the negotiation) without a body,
   * and the connection that finished the handshake carries the request. Default `false`.
   */
  readonly connectionBound?: boolean;
}
