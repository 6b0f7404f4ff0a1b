/**
 * The EWS HTTP client, on `node:http`/`node:https` so that sockets stay under our control (an NTLM
 * handshake authenticates one connection; a streaming response holds one for 30 minutes).
 *
 * - {@link postSoap}: one request, one envelope back, or a typed error.
 * - {@link openStream}: a `GetStreamingEvents` response, delivering each envelope as it closes.
 *
 * Authentication runs in rounds (`auth-header.ts`): Basic and Bearer send one header (Bearer
 * refreshes once on a 401); NTLM, which authenticates a connection, runs each request on a
 * one-socket agent of its own — negotiation without the body, then the authenticating round
 * carrying it — and closes that socket with the call.
 *
 * Errors: HTTP 401/403 → `EwsAuthError` (after the auth scheme's rounds); a SOAP fault →
 * `EwsSoapFaultError` (with `backOffMs` from `BackOffMilliseconds`); any other non-2xx →
 * `EwsHttpError` (with `retryAfterMs` from `Retry-After`); a body that is not XML →
 * `EwsNotXmlError`; socket failures → `EwsConnectionError` (`EwsStreamCutError` once a response
 * had started). Response messages with `ResponseClass="Error"` are returned, not thrown: see
 * `envelopeError()` in `response-errors.ts`. No error or log line carries a credential: the
 * passwords and tokens a call uses are remembered for `scrubCredentials` (`lib/credential-scrub.ts`),
 * which every error message and body preview passes through.
 *
 * Bodies: requests send `Accept-Encoding: identity`; a body a proxy compressed anyway (gzip,
 * deflate, br) is decoded before parsing, and any other `Content-Encoding` is an
 * `EwsContentEncodingError` (`content-encoding.ts`).
 */
import { describeKind, describeValue, positiveMs } from '../validate.js';
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { EwsAuthError, EwsBridgeError, EwsConnectionError, EwsHeartbeatTimeoutError, EwsHttpError, EwsParseError, EwsStreamCutError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { authorizerFor, tokenProviderError, type EwsAuth } from './auth-header.js';
import { ACCEPT_IDENTITY, bodyDecodeError, decodedBody } from './content-encoding.js';
import { rememberSecret } from '../credential-scrub.js';
import type { EwsEnvelope } from './messages.js';
import { EnvelopeParser } from './parser.js';
import { soapFaultError } from './response-errors.js';
import { parseRetryAfter } from './retry-after.js';
import { tlsAgentOptions, validateTlsOptions, type EwsTlsOptions } from './tls.js';

/** One SOAP call: the `SOAPAction` and the envelope text (from the builders in `requests.ts`). */
export interface SoapRequest {
  /** The operation's SOAPAction URI, e.g. `SOAP_ACTIONS.Subscribe`. Sent quoted, as SOAP 1.1 wants. */
  readonly soapAction: string;
  /** The complete request envelope. */
  readonly envelope: string;
}

/**
 * Keeps cookies between calls: the seam for Exchange 2013+ affinity (`X-BackEndOverrideCookie`),
 * which must follow every later call of a subscription group.
 */
export interface CookieJar {
  /** The `Cookie` header value to send to `url`, or `undefined` for none. */
  cookieHeader(url: URL): string | undefined;
  /** Called with every response's `Set-Cookie` values (only when there are some). */
  storeSetCookie(url: URL, setCookie: readonly string[]): void;
}

/** Where and how to reach EWS: shared by {@link postSoap} and {@link openStream}. */
export interface EwsEndpointOptions {
  /** The EWS endpoint, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`. Must not contain user:password. Required. */
  readonly url: string | URL;
  /** Credentials. Default `{ type: 'none' }`. */
  readonly auth?: EwsAuth;
  /**
   * The mailbox the call concerns, sent as `X-AnchorMailbox` so Exchange 2013+ routes it to that
   * mailbox's server (impersonation also needs the SOAP header, which the request builders add).
   * Default: none.
   */
  readonly mailbox?: string;
  /** Extra HTTP headers, e.g. `X-PreferServerAffinity`. They cannot replace `Authorization` or `Content-Length`. Default: none. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Cookie store for affinity cookies. Default: none (cookies are ignored). */
  readonly cookies?: CookieJar;
  /**
   * The connection pool. Pass one from {@link createEwsAgent} (and `destroy()` it when done) to own
   * the sockets; TLS settings (`tls` of {@link createEwsAgent}) go on the agent too. With a
   * connection-bound scheme (NTLM) each request runs on a one-socket agent of its own, made with
   * this agent's options (so its TLS settings apply) and closed when the response has been read.
   * Default: a shared keep-alive agent per protocol.
   */
  readonly agent?: http.Agent;
  /** Cap on one envelope's size, passed to the parser. Default: the parser's default. */
  readonly maxEnvelopeBytes?: number;
  /** Where debug lines go. Default: silent. */
  readonly logger?: Logger;
}

/** Options of {@link postSoap}. */
export interface PostSoapOptions extends EwsEndpointOptions {
  /** The whole exchange (connect, auth rounds, response body) must finish within this. Default `100_000` (as EWS's own clients). */
  readonly requestTimeoutMs?: number;
  /** Aborts the call; the promise rejects with `signal.reason`. Default: none. */
  readonly signal?: AbortSignal;
}

/** What {@link openStream} learnt when the response started. */
export interface StreamOpenInfo {
  /** The HTTP status (2xx). */
  readonly status: number;
}

/** Options of {@link openStream}. */
export interface OpenStreamOptions extends EwsEndpointOptions {
  /** Called with each envelope as soon as it closes, in wire order. SOAP faults are not delivered: they reject. Required. */
  readonly onEnvelope: (envelope: EwsEnvelope) => void;
  /** Called once when a 2xx response has started, before any envelope. Default: none. */
  readonly onOpen?: (info: StreamOpenInfo) => void;
  /** The response headers must arrive within this (the sources' `requestTimeoutMs`). Default `100_000`. */
  readonly requestTimeoutMs?: number;
  /**
   * Once the response started, the connection is declared dead (rejecting with
   * `EwsHeartbeatTimeoutError`) when no complete envelope arrives for this long: bytes that never
   * finish an envelope (a trickle of whitespace) do not count. Default `90_000` (what
   * Microsoft's own client uses). `Infinity` disables it.
   */
  readonly heartbeatTimeoutMs?: number;
  /** Ends the stream; the promise rejects with `signal.reason`. Default: none. */
  readonly signal?: AbortSignal;
}

/** How a stream ended cleanly (the server finished the HTTP response). */
export interface StreamEnd {
  /** Envelopes delivered through `onEnvelope`. */
  readonly envelopes: number;
}

/** Options of {@link createEwsAgent}. */
export interface EwsAgentOptions {
  /** The endpoint the agent will serve: decides between `http.Agent` and `https.Agent`. Required. */
  readonly url: string | URL;
  /** Most sockets at once to the host. Default `Infinity`. */
  readonly maxSockets?: number;
  /** Private CA certificates to trust (https only), in addition to Node's bundled roots. Same as `tls.ca`; give one or the other. Default: none. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** TLS settings (https only): trusted CAs, certificate checking, client certificate. Default: Node's default trust, verification on. */
  readonly tls?: EwsTlsOptions;
  /** Receives the warning when `tls.rejectUnauthorized` is `false`. Default: silent. */
  readonly logger?: Logger;
}

const DEFAULT_TIMEOUT_MS = 100_000;
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 90_000;
// Error bodies are read only to find a SOAP fault or to let the socket be reused; never unbounded.
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

const sharedAgents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true }),
};

/**
 * A keep-alive connection pool for one endpoint. Owning one (instead of the shared default) lets a
 * caller close every socket with `agent.destroy()`.
 */
export function createEwsAgent(options: EwsAgentOptions): http.Agent {
  const url = endpointUrl(options.url);
  const maxSockets = options.maxSockets ?? Infinity;
  if (!(maxSockets === Infinity || (Number.isInteger(maxSockets) && maxSockets >= 1))) {
    throw new RangeError(`maxSockets must be a positive integer or Infinity (got ${describeValue(maxSockets)})`);
  }
  if (options.tls !== undefined) validateTlsOptions(options.tls, 'tls');
  if (options.ca !== undefined && options.tls?.ca !== undefined) throw new TypeError('give ca or tls.ca, not both');
  const tls: EwsTlsOptions | undefined = options.ca === undefined ? options.tls : { ...options.tls, ca: options.ca };
  if (url.protocol === 'https:') {
    return new https.Agent({ keepAlive: true, maxSockets, ...tlsAgentOptions(tls, options.logger ?? silentLogger) });
  }
  // Settings meant to protect a connection must not be dropped quietly on a plain-http one.
  if (tls !== undefined) throw new TypeError('tls (and ca) apply only to an https url');
  return new http.Agent({ keepAlive: true, maxSockets });
}

/**
 * A one-socket keep-alive agent with `base`'s options (TLS settings included), for a
 * connection-bound handshake: every round of the handshake and the request itself then share one
 * TCP connection.
 */
function pinnedAgent(url: URL, base: http.Agent | undefined): http.Agent {
  // `options` holds what the agent was constructed with (public on https.Agent, present on both).
  const inherited = (base as { options?: https.AgentOptions } | undefined)?.options ?? {};
  const options = { ...inherited, keepAlive: true, maxSockets: 1, maxTotalSockets: 1, maxFreeSockets: 1 };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

/**
 * Parses and checks an endpoint URL.
 *
 * @throws TypeError naming `url` and only the kind of value it got (`a string`): a URL may carry
 *   credentials, and `user:secret@host` parses with the scheme `user:`.
 */
export function endpointUrl(value: string | URL, name = 'url'): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${name} must be an absolute http or https URL (got ${describeKind(value)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${name} must be an absolute http or https URL (got ${describeKind(value)})`);
  if (url.username !== '' || url.password !== '') throw new TypeError(`${name} must not contain credentials; use the auth option`);
  return url;
}

/** The endpoint as it may appear in logs and errors: no query, no credentials. */
function redact(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function operationOf(soapAction: string): string {
  return soapAction.slice(soapAction.lastIndexOf('/') + 1);
}

/**
 * Sends one SOAP request and returns its single response envelope.
 *
 * A `ResponseClass="Error"` message is part of a normal answer (HTTP 200) and is returned; convert
 * it with `envelopeError()` when the caller wants it thrown.
 *
 * @throws EwsAuthError, EwsSoapFaultError, EwsHttpError, EwsNotXmlError, EwsParseError,
 *   EwsConnectionError, or `signal.reason` when aborted.
 */
export function postSoap(request: SoapRequest, options: PostSoapOptions): Promise<EwsEnvelope> {
  return exchangeSoap(request, options, undefined, (envelope) => envelope);
}

/** The largest answer {@link postSoapRecognizing} holds back to try its recogniser on. */
const RECOGNIZE_MAX_BYTES = 8 * 1024;

/**
 * {@link postSoap} for a caller that wants one value out of a small answer it usually knows by
 * heart (a Subscribe's success): a whole 2xx body of at most 8 KiB that `recognize` reads (given
 * the bytes as Latin-1 text) is answered by it, without the envelope parser. Any other answer goes
 * exactly the way of {@link postSoap} — parsed, its errors thrown — and `read` takes the envelope.
 * `recognize` must accept only text the parser would read to the same value.
 *
 * @throws as {@link postSoap}.
 */
export function postSoapRecognizing<T>(
  request: SoapRequest,
  options: PostSoapOptions,
  recognize: (latin1: string) => T | undefined,
  read: (envelope: EwsEnvelope) => T,
): Promise<T> {
  return exchangeSoap(request, options, recognize, read);
}

async function exchangeSoap<T>(
  request: SoapRequest,
  options: PostSoapOptions,
  recognize: ((latin1: string) => T | undefined) | undefined,
  read: (envelope: EwsEnvelope) => T,
): Promise<T> {
  const timeoutMs = positiveMs(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_TIMEOUT_MS, { allowInfinity: true });
  const call = new CallSignal(options.signal);
  call.deadline(timeoutMs, () => new EwsConnectionError(`${operationOf(request.soapAction)} got no complete answer within ${timeoutMs} ms`));
  try {
    const res = await exchange(request, options, call);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw await errorForResponse(res, options, call.signal);
    // What the recogniser may see: the whole body, held back while it stays small (and within the
    // parser's own size cap, so that a too-large answer still fails as it would).
    const holdMax = recognize === undefined ? -1 : Math.min(RECOGNIZE_MAX_BYTES, recognizableMax(options.maxEnvelopeBytes));
    let held: Buffer[] | undefined = holdMax >= 0 ? [] : undefined;
    let heldBytes = 0;
    // Without a recogniser, made before the body is read, as it always was (a bad option throws first).
    let parser: EnvelopeParser | undefined = recognize === undefined ? newParser(options, status) : undefined;
    const envelopes: EwsEnvelope[] = [];
    const parse = (chunk: Buffer): void => {
      parser ??= newParser(options, status);
      envelopes.push(...parser.write(chunk));
    };
    await pump(decodedBody(res), call.signal, undefined, (chunk) => {
      if (held !== undefined) {
        heldBytes += chunk.length;
        if (heldBytes <= holdMax) {
          held.push(chunk);
          return;
        }
        for (const piece of held) parse(piece);
        held = undefined;
      }
      parse(chunk);
    });
    if (held !== undefined && held.length > 0) {
      const body = held.length === 1 ? held[0]! : Buffer.concat(held);
      const value = recognize!(body.toString('latin1'));
      if (value !== undefined) return value;
      parse(body);
    }
    parser ??= newParser(options, status);
    envelopes.push(...endParser(parser));
    const envelope = envelopes[0];
    if (envelope === undefined || envelopes.length > 1) {
      throw new EwsParseError(`Expected one SOAP envelope in the ${operationOf(request.soapAction)} response, got ${envelopes.length}`);
    }
    if (envelope.body.type === 'fault') throw soapFaultError(envelope.body.fault);
    return read(envelope);
  } finally {
    call.dispose();
  }
}

/** The largest body the recogniser may take instead of the parser: none when the parser would refuse the option. */
function recognizableMax(maxEnvelopeBytes: number | undefined): number {
  if (maxEnvelopeBytes === undefined) return Infinity;
  return Number.isSafeInteger(maxEnvelopeBytes) && maxEnvelopeBytes >= 1 ? maxEnvelopeBytes : -1;
}

/**
 * Opens a `GetStreamingEvents` response and delivers each envelope through `onEnvelope` the moment it
 * closes. Resolves when the server ends the response cleanly (after `ConnectionStatus Closed`, or
 * not); rejects with `EwsStreamCutError` when the connection is cut, `EwsHeartbeatTimeoutError`
 * after `heartbeatTimeoutMs` without a complete envelope, the typed HTTP/auth/fault error when the server refuses or
 * faults, and `signal.reason` when aborted. The socket is destroyed on every path but a clean end.
 */
export async function openStream(request: SoapRequest, options: OpenStreamOptions): Promise<StreamEnd> {
  const requestTimeoutMs = positiveMs(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_TIMEOUT_MS, { allowInfinity: true });
  const heartbeatTimeoutMs = positiveMs(options.heartbeatTimeoutMs, 'heartbeatTimeoutMs', DEFAULT_HEARTBEAT_TIMEOUT_MS, { allowInfinity: true });
  const call = new CallSignal(options.signal);
  call.deadline(requestTimeoutMs, () => new EwsConnectionError(`${operationOf(request.soapAction)} got no response within ${requestTimeoutMs} ms`));
  try {
    const res = await exchange(request, options, call);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw await errorForResponse(res, options, call.signal);
    // From here on the heartbeat watchdog guards the connection, not the response deadline.
    call.clearDeadline();
    const body = decodedBody(res);
    options.onOpen?.({ status });
    const parser = newParser(options, status);
    let delivered = 0;
    /** Delivers the envelopes a chunk completed; `true` when there was one (progress for the watchdog). */
    const deliver = (envelopes: readonly EwsEnvelope[]): boolean => {
      for (const envelope of envelopes) {
        // A consumer that unsubscribed inside onEnvelope must not get the rest of the chunk.
        if (call.signal.aborted) break;
        if (envelope.body.type === 'fault') throw soapFaultError(envelope.body.fault);
        delivered++;
        options.onEnvelope(envelope);
      }
      return envelopes.length > 0;
    };
    try {
      // The watchdog counts complete envelopes, not bytes: a server (or proxy) that trickles
      // whitespace without ever finishing an envelope is as dead as a silent one.
      await pump(body, call.signal, heartbeatTimeoutMs, (chunk) => deliver(parser.write(chunk)));
    } catch (error) {
      if (error instanceof EwsStreamCutError) {
        throw new EwsStreamCutError(error.message, { midEnvelope: hasPartialEnvelope(parser), cause: error.cause });
      }
      throw error;
    }
    try {
      deliver(parser.end());
    } catch (error) {
      if (error instanceof EwsBridgeError && error.code === 'EWS_PARSE_ERROR') {
        throw new EwsStreamCutError('The streaming response ended in the middle of an envelope', { midEnvelope: true, cause: error });
      }
      throw error;
    }
    return { envelopes: delivered };
  } finally {
    call.dispose();
  }
}

/** A response read whole by {@link postXml}. */
export interface RawXmlResponse {
  readonly status: number;
  /** `Location`, for a redirect. */
  readonly location: string | undefined;
  readonly contentType: string | undefined;
  /** The body as UTF-8 text (at most 1 MiB). */
  readonly body: string;
}

/**
 * Posts an XML document that is not an EWS call (Autodiscover), with the same authentication
 * rounds, TLS settings and timeouts as {@link postSoap}, and returns the response as it is:
 * redirects are not followed (the caller applies its own rules) and the body is not parsed. An
 * empty `soapAction` sends no `SOAPAction` header (POX Autodiscover).
 *
 * @throws EwsAuthError, EwsConnectionError, EwsHttpError (body over 1 MiB), or `signal.reason`.
 */
export async function postXml(request: SoapRequest, options: PostSoapOptions): Promise<RawXmlResponse> {
  const timeoutMs = positiveMs(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_TIMEOUT_MS, { allowInfinity: true });
  const call = new CallSignal(options.signal);
  call.deadline(timeoutMs, () => new EwsConnectionError(`The request to ${redact(endpointUrl(options.url))} got no complete answer within ${timeoutMs} ms`));
  try {
    const res = await exchange(request, options, call);
    const status = res.statusCode ?? 0;
    if (status === 401 || status === 403) {
      await drain(res, call.signal);
      throw new EwsAuthError(status);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    await pump(res, call.signal, undefined, (chunk) => {
      total += chunk.length;
      if (total > MAX_ERROR_BODY_BYTES) throw new EwsHttpError(status, { message: 'Response body too large (over 1 MiB)' });
      chunks.push(chunk);
    });
    const location = res.headers.location;
    return { status, location, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') };
  } finally {
    call.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * What every wait inside a call listens to: the part of `AbortSignal` the transport uses. A
 * {@link CallSignal} is one (an `AbortController` per call, with its `EventTarget`, cost more than
 * the rest of a small request's bookkeeping).
 */
interface CallAbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * One internal signal per call that fires on the caller's abort or on our own deadline, so every
 * wait in the call reacts to both the same way. It is its own signal: aborted once, its listeners
 * called once each, in the order they were added (those added after the abort never).
 */
class CallSignal implements CallAbortSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onOuterAbort: (() => void) | undefined;
  private cleanups: (() => void)[] | undefined;

  constructor(private readonly outer: AbortSignal | undefined) {
    if (outer) {
      if (outer.aborted) this.abort(outer.reason);
      else {
        this.onOuterAbort = () => this.abort(outer.reason);
        outer.addEventListener('abort', this.onOuterAbort, { once: true });
      }
    }
  }

  get signal(): CallAbortSignal {
    return this;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    const index = listeners === undefined ? -1 : listeners.indexOf(listener);
    if (index >= 0) listeners!.splice(index, 1);
  }

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        // As an EventTarget does: the other listeners still run, the error surfaces uncaught.
        process.nextTick(() => {
          throw error;
        });
      }
    }
  }

  deadline(ms: number, reason: () => Error): void {
    if (!Number.isFinite(ms)) return;
    this.timer = setTimeout(() => this.abort(reason()), ms);
  }

  clearDeadline(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs `cleanup` when the call is over (success, failure or abort). */
  onDispose(cleanup: () => void): void {
    (this.cleanups ??= []).push(cleanup);
  }

  dispose(): void {
    this.clearDeadline();
    if (this.onOuterAbort) this.outer?.removeEventListener('abort', this.onOuterAbort);
    const cleanups = this.cleanups;
    this.cleanups = undefined;
    if (cleanups) for (const cleanup of cleanups) cleanup();
  }
}

function newParser(options: EwsEndpointOptions, httpStatus: number): EnvelopeParser {
  return new EnvelopeParser({
    httpStatus,
    ...(options.maxEnvelopeBytes === undefined ? {} : { maxEnvelopeBytes: options.maxEnvelopeBytes }),
  });
}

function endParser(parser: EnvelopeParser): EwsEnvelope[] {
  return parser.end();
}

function hasPartialEnvelope(parser: EnvelopeParser): boolean {
  try {
    parser.end();
    return false;
  } catch {
    return true;
  }
}

// More rounds than any scheme needs (NTLM: negotiate, authenticate, one unauthenticated resend).
const MAX_AUTH_ROUNDS = 4;

/**
 * Sends the request, running the auth scheme's rounds on 401, and resolves with the first response
 * that is not an auth challenge we can answer.
 *
 * A connection-bound scheme (NTLM) gets a one-socket agent of its own for this call, closed when
 * the call is disposed: the handshake and the request share one connection, and no other request
 * can borrow that authenticated socket.
 */
async function exchange(request: SoapRequest, options: EwsEndpointOptions, call: CallSignal): Promise<IncomingMessage> {
  const signal = call.signal;
  const url = endpointUrl(options.url);
  const logger = options.logger ?? silentLogger;
  const shared = authorizerFor(options.auth);
  const authorizer = shared.forCall?.() ?? shared;
  const operation = operationOf(request.soapAction);
  const bound = authorizer.connectionBound === true;
  let agent = options.agent;
  if (bound) {
    const pinned = pinnedAgent(url, options.agent ?? (url.protocol === 'https:' ? sharedAgents.https : sharedAgents.http));
    call.onDispose(() => pinned.destroy());
    agent = pinned;
  }
  rememberAuthSecrets(options.auth);
  let authorization: string | undefined;
  let lastSocket: Socket | undefined;
  try {
    authorization = await authorizer.initial({ url, socket: undefined });
  } catch (error) {
    throw tokenProviderError(error);
  }
  rememberAuthorization(authorization);
  // The negotiation round of a connection-bound scheme carries no body: the server only answers
  // it with its challenge, and the body goes once, with the authenticating round.
  let withBody = !bound;
  let handshakeSocket: Socket | undefined;
  let switchedConnection = false;
  for (let round = 1; round <= MAX_AUTH_ROUNDS; round++) {
    signal.throwIfAborted();
    const res = await send(url, request, { ...options, ...(agent === undefined ? {} : { agent }) }, authorization, signal, withBody, (socket) => {
      lastSocket = socket;
      if (!bound) return;
      handshakeSocket ??= socket;
      if (socket !== handshakeSocket) switchedConnection = true;
    });
    const status = res.statusCode ?? 0;
    logger.debug('EWS response', { operation, url: redact(url), status, round });
    const setCookie = res.headers['set-cookie'];
    if (options.cookies && setCookie && setCookie.length > 0) options.cookies.storeSetCookie(url, setCookie);
    if (status !== 401) {
      if (withBody) return res;
      // The server did not ask for the handshake: send the real request, on the same connection.
      await drain(res, signal);
      withBody = true;
      authorization = undefined;
      continue;
    }
    const challenges = wwwAuthenticate(res);
    // The body is drained (not dropped) so the keep-alive socket survives for a connection-bound handshake.
    await drain(res, signal);
    let next: string | undefined;
    try {
      next = await authorizer.challenge(challenges, round, { url, socket: lastSocket });
    } catch (error) {
      if (error instanceof EwsAuthError) throw switchedConnection ? connectionSwitched() : error;
      throw tokenProviderError(error);
    }
    if (next === undefined) throw switchedConnection ? connectionSwitched() : new EwsAuthError(401);
    rememberAuthorization(next);
    authorization = next;
    withBody = true;
  }
  throw new EwsAuthError(401, `Authentication did not complete within ${MAX_AUTH_ROUNDS} rounds`);
}

/** The configured secrets, so an error quoting one (a server echoing it) can be scrubbed. */
function rememberAuthSecrets(auth: EwsAuth | undefined): void {
  if (auth?.type === 'basic' || auth?.type === 'ntlm') rememberSecret(auth.password);
  if (auth?.type === 'bearer' && typeof auth.token === 'string') rememberSecret(auth.token);
}

/** The credential of a Basic or Bearer header we send (NTLM messages are per-handshake, and scrubbed by their scheme name). */
function rememberAuthorization(header: string | undefined): void {
  const match = header === undefined ? null : /^(?:Basic|Bearer) (.+)$/.exec(header);
  if (match?.[1] !== undefined) rememberSecret(match[1]);
}

function connectionSwitched(): EwsAuthError {
  return new EwsAuthError(401, 'The server closed the connection in the middle of the NTLM handshake (a proxy or load balancer without connection affinity?)');
}

function wwwAuthenticate(res: IncomingMessage): string[] {
  const values: string[] = [];
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === 'www-authenticate') values.push(raw[i + 1] ?? '');
  }
  return values;
}

function send(
  url: URL,
  request: SoapRequest,
  options: EwsEndpointOptions,
  authorization: string | undefined,
  signal: CallAbortSignal,
  withBody: boolean,
  onSocket: (socket: Socket) => void,
): Promise<IncomingMessage> {
  const body = withBody ? Buffer.from(request.envelope, 'utf8') : Buffer.alloc(0);
  const soapAction = request.soapAction.startsWith('"') ? request.soapAction : `"${request.soapAction}"`;
  const cookie = options.cookies?.cookieHeader(url);
  const agent = options.agent ?? (url.protocol === 'https:' ? sharedAgents.https : sharedAgents.http);
  const transport = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/xml; charset=utf-8',
    Accept: 'text/xml',
    ...ACCEPT_IDENTITY,
    ...(request.soapAction === '' ? {} : { SOAPAction: soapAction }),
    ...(options.mailbox === undefined ? {} : { 'X-AnchorMailbox': options.mailbox }),
    ...options.headers,
  };
  if (cookie !== undefined && cookie !== '') headers['Cookie'] = cookie;
  // Caller headers cannot override these two: a wrong length corrupts the connection and a stray
  // Authorization would leak past the auth scheme.
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || lower === 'content-length') delete headers[name];
  }
  if (authorization !== undefined) headers['Authorization'] = authorization;
  headers['Content-Length'] = body.length;
  // The head's lines as node would write them from `headers`, handed over as a flat list: node
  // validates them the same, without a setHeader per header (~10 µs of a small request).
  const lines = headerLines(headers, url.host);

  return new Promise<IncomingMessage>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let req: http.ClientRequest;
    try {
      req = lines === undefined ? transport.request(url, { method: 'POST', headers, agent }) : transport.request({ ...targetOf(url), method: 'POST', headers: lines, agent });
    } catch (error) {
      // Invalid header characters and the like: a caller mistake, not a network failure.
      reject(error);
      return;
    }
    const onAbort = (): void => {
      req.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('socket', onSocket);
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort);
      resolve(res);
    });
    // Stays attached for the life of the request: the socket can still fail while the body is read,
    // and an 'error' without a listener would crash the host.
    req.on('error', (error: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(signal.aborted ? signal.reason : connectionError(url, error));
    });
    req.end(body);
  });
}

/**
 * The header lines node writes for `headers` given as an object (set one by one, in key order: a
 * name that differs from an earlier one only in case replaces that line, in its place), then the
 * Host line node adds; `undefined` when node does more than write lines (an `Expect` header, the
 * caller's own `Host`), for the object to go to node as it is.
 */
function headerLines(headers: Readonly<Record<string, string | number>>, host: string): string[] | undefined {
  const lines: string[] = [];
  const at = new Map<string, number>();
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'expect') return undefined;
    const value = String(headers[name]);
    const index = at.get(lower);
    if (index === undefined) {
      at.set(lower, lines.length);
      lines.push(name, value);
    } else {
      lines[index] = name;
      lines[index + 1] = value;
    }
  }
  lines.push('Host', host);
  return lines;
}

/** What `http.request` takes from a URL (as node's own `urlToHttpOptions` gives it), per URL text. */
interface RequestTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly path: string;
}

const targets = new Map<string, RequestTarget>();
/** Endpoints whose targets are kept (a process talks to a few). */
const MAX_TARGETS = 32;

function targetOf(url: URL): RequestTarget {
  const href = url.href;
  let target = targets.get(href);
  if (target === undefined) {
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    target = { protocol: url.protocol, hostname, port: url.port === '' ? undefined : Number(url.port), path: `${url.pathname}${url.search}` };
    if (targets.size >= MAX_TARGETS) targets.clear();
    targets.set(href, target);
  }
  return target;
}

/** OpenSSL/Node codes for a server certificate we refused: retrying cannot help, so they are fatal. */
const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function connectionError(url: URL, error: NodeJS.ErrnoException): EwsConnectionError {
  const what = error.code ?? error.message;
  const certificate = error.code !== undefined && CERTIFICATE_ERROR_CODES.has(error.code);
  const hint = certificate ? '; the server certificate was refused (see the `tls` option: `ca` for a private CA)' : '';
  return new EwsConnectionError(`Connection to ${url.origin} failed (${what})${hint}`, { cause: error, retriable: !certificate });
}

/**
 * Feeds a response's chunks to `sink` until it ends. Rejects with `signal.reason` on abort, with
 * `EwsHeartbeatTimeoutError` after `heartbeatTimeoutMs` without progress (a chunk for which `sink` did
 * not return `false`), with `EwsStreamCutError` when the
 * connection goes before the end, and with whatever `sink` throws. The response is destroyed on
 * every path but a clean end.
 */
function pump(res: Readable, signal: CallAbortSignal, heartbeatTimeoutMs: number | undefined, sink: (chunk: Buffer) => boolean | void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      signal.removeEventListener('abort', onAbort);
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('close', onClose);
      if (error === undefined) {
        resolve();
      } else {
        res.destroy();
        reject(error);
      }
    };
    const onAbort = (): void => finish(signal.reason);
    const onData = (chunk: Buffer): void => {
      try {
        // `false`: the chunk made no progress the watchdog counts (no envelope completed).
        if (sink(chunk) !== false) idle?.refresh();
      } catch (error) {
        finish(error);
      }
    };
    const onEnd = (): void => finish();
    const onClose = (): void => finish(new EwsStreamCutError('The connection closed before the response ended', { midEnvelope: false }));
    const onError = (error: Error): void =>
      finish(bodyDecodeError(res, error) ?? new EwsStreamCutError(`The connection failed while reading the response (${(error as NodeJS.ErrnoException).code ?? error.message})`, { midEnvelope: false, cause: error }));

    if (signal.aborted) {
      finish(signal.reason);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    if (heartbeatTimeoutMs !== undefined && Number.isFinite(heartbeatTimeoutMs)) {
      idle = setTimeout(() => finish(new EwsHeartbeatTimeoutError(heartbeatTimeoutMs)), heartbeatTimeoutMs);
    }
    res.on('data', onData);
    res.on('end', onEnd);
    res.on('close', onClose);
    // Never removed: a late socket error after we settled must not become an uncaught exception.
    res.on('error', onError);
  });
}

/** Reads and discards a (bounded) body so a keep-alive socket can be reused. */
async function drain(res: IncomingMessage, signal: CallAbortSignal): Promise<void> {
  let total = 0;
  try {
    await pump(res, signal, undefined, (chunk) => {
      total += chunk.length;
      if (total > MAX_ERROR_BODY_BYTES) throw new EwsHttpError(res.statusCode ?? 0, { message: 'Error response body too large' });
    });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    // The status already says what went wrong; a body we could not read adds nothing.
    void error;
  }
}

/** The typed error for a non-2xx response (401 has been handled by the auth rounds). */
async function errorForResponse(res: IncomingMessage, options: EwsEndpointOptions, signal: CallAbortSignal): Promise<Error> {
  const status = res.statusCode ?? 0;
  const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
  if (status === 401 || status === 403) {
    await drain(res, signal);
    return new EwsAuthError(status);
  }
  if (status === 500) {
    // Exchange answers SOAP faults (ErrorServerBusy, ErrorSchemaValidation, …) with 500.
    const parser = newParser(options, status);
    const envelopes: EwsEnvelope[] = [];
    let total = 0;
    try {
      await pump(decodedBody(res), signal, undefined, (chunk) => {
        total += chunk.length;
        if (total > MAX_ERROR_BODY_BYTES) throw new EwsHttpError(status, { message: 'Error response body too large' });
        envelopes.push(...parser.write(chunk));
      });
      envelopes.push(...parser.end());
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      return new EwsHttpError(status, { ...(retryAfterMs === undefined ? {} : { retryAfterMs }), cause: error });
    }
    const first = envelopes[0];
    if (first?.body.type === 'fault') return soapFaultError(first.body.fault);
    return new EwsHttpError(status, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  await drain(res, signal);
  return new EwsHttpError(status, retryAfterMs === undefined ? {} : { retryAfterMs });
}
