/**
 * Options every source shares (where the mailbox is, what to watch, how to retry), their defaults,
 * and their validation (lib/validate.ts's style: `RangeError: retry.factor must be a finite number ≥ 1 (got 0)`).
 */
import type { Agent } from 'node:http';
import { validateAuth, type EwsAuth } from '../ews/auth-header.js';
import { EXCHANGE_VERSIONS, validateSubscriptionScope, type FolderSpec, type ImpersonationTarget } from '../ews/requests.js';
import { validateTlsOptions, type EwsTlsOptions } from '../ews/tls.js';
import { endpointUrl, type CookieJar } from '../ews/transport.js';
import { resolveLogger, type Logger } from '../logger.js';
import { EVENT_TYPES, type EventType, type ExchangeVersion } from '../model.js';
import { MAX_TIMER_MS, booleanOption, describeValue, optionalAbortSignal, optionalFunction, positiveMs, requireObject } from '../validate.js';
import { DEFAULT_RETRY_OPTIONS, type ResolvedRetryOptions, type RetryOptions } from './backoff.js';

/**
 * Where the server is and how to talk to it: what every source and a `StreamingGroup` share
 * (one resolver, {@link resolveConnectionOptions}).
 */
export interface ConnectionOptions {
  /** The EWS endpoint, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`. Must not embed credentials. Required. */
  readonly url: string | URL;
  /**
   * Credentials: `{ type: 'ntlm', username, password, domain?, workstation? }`,
   * `{ type: 'basic', username, password }`, `{ type: 'bearer', token }` or `{ type: 'none' }`.
   * Default `{ type: 'none' }`.
   */
  readonly auth?: EwsAuth;
  /** `RequestServerVersion` sent with every request (notifications need Exchange 2010 SP1 or later). Default `'Exchange2013'`. */
  readonly requestServerVersion?: ExchangeVersion;
  /** Extra HTTP headers sent with every request. Default: none. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Cookie store: receives every cookie the server sets, and adds its cookies to every call. Default: none. */
  readonly cookies?: CookieJar;
  /**
   * Server affinity (Exchange 2013+): Subscribe sends `X-PreferServerAffinity: true` (with
   * `X-AnchorMailbox`, see `anchorMailbox`), and the `X-BackEndOverrideCookie` its response sets
   * goes, with both headers, on every later call of that subscription (GetEvents,
   * GetStreamingEvents, Unsubscribe), so they all reach the mailbox server that holds it.
   * Harmless on servers that ignore it. Default `true`.
   */
  readonly affinity?: boolean;
  /**
   * The `X-AnchorMailbox` sent with every call: the mailbox whose server handles the
   * subscription. Several sources watching mailboxes of one affinity group (same Autodiscover
   * `GroupingInformation`) should all give the group's first mailbox here. Default: `mailbox`;
   * without either, no anchor is sent and the server routes by the authenticated account.
   */
  readonly anchorMailbox?: string;
  /**
   * TLS settings for an https `url`: extra trusted CAs (`ca`), certificate checking
   * (`rejectUnauthorized`, which logs a warning when `false`), client certificate. Not with
   * `createAgent` (put them on that agent). Default: Node's default trust, verification on.
   */
  readonly tls?: EwsTlsOptions;
  /**
   * Builds the connection pool for one subscriber (e.g. an `https.Agent` with a private `ca`). The
   * source destroys it when the subscriber goes away. Default: a keep-alive agent for `url`.
   */
  readonly createAgent?: () => Agent;
  /** Time limit of each ordinary call (Subscribe, Unsubscribe) and of the wait for a stream's response headers. Default `100_000`. */
  readonly requestTimeoutMs?: number;
  /** How failures are retried. Default: see {@link RetryOptions}. */
  readonly retry?: RetryOptions;
  /** How long the best-effort EWS Unsubscribe at teardown may take. Default `5_000`. */
  readonly unsubscribeTimeoutMs?: number;
  /** Cap on one response envelope. Default: the parser's (8 MiB). */
  readonly maxEnvelopeBytes?: number;
  /** Stops the source: the Observable completes, the connection closes and the subscription is removed. Default: none. */
  readonly signal?: AbortSignal;
  /** Where the source logs (never credentials). Default: silent. */
  readonly logger?: Logger;
}

/** What one subscription watches: a source's, or one member's of a `StreamingGroup`. */
export interface SubscriptionScopeOptions {
  /**
   * The mailbox to watch through impersonation (SMTP address): sent as the `ExchangeImpersonation`
   * SOAP header and the `X-AnchorMailbox` HTTP header, and set as `mailbox` on every notification.
   * Default: none (the authenticated account's own mailbox).
   */
  readonly mailbox?: string;
  /** Folders to watch: distinguished names (`'inbox'`) or `{ id, changeKey? }`. Default `['inbox']` (ignored with `subscribeToAllFolders`). */
  readonly folders?: readonly FolderSpec[];
  /** Watch every folder of the mailbox (one subscription). Default `false`. */
  readonly subscribeToAllFolders?: boolean;
  /** Event types to receive. Default: all of `'NewMail'`, `'Created'`, `'Deleted'`, `'Modified'`, `'Moved'`, `'Copied'`, `'FreeBusyChanged'`. */
  readonly eventTypes?: readonly EventType[];
}

/** Options shared by the streaming, pull and hybrid sources: the connection and what it watches. */
export interface SourceOptions extends ConnectionOptions, SubscriptionScopeOptions {}

/** {@link SubscriptionScopeOptions} checked and with defaults applied. */
export interface ResolvedScope {
  readonly mailbox: string | undefined;
  readonly folders: readonly FolderSpec[];
  readonly subscribeToAllFolders: boolean;
  readonly eventTypes: readonly EventType[];
  /** Whom the subscription's calls impersonate: `mailbox`, when given. */
  readonly impersonation: ImpersonationTarget | undefined;
}

/** {@link ConnectionOptions} checked and with defaults applied. */
export interface ResolvedConnectionOptions {
  readonly url: URL;
  readonly auth: EwsAuth;
  readonly requestServerVersion: ExchangeVersion;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly cookies: CookieJar | undefined;
  readonly affinity: boolean;
  readonly anchorMailbox: string | undefined;
  readonly tls: EwsTlsOptions | undefined;
  readonly createAgent: (() => Agent) | undefined;
  readonly requestTimeoutMs: number;
  readonly retry: ResolvedRetryOptions;
  readonly unsubscribeTimeoutMs: number;
  readonly maxEnvelopeBytes: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly logger: Logger;
}

/** {@link SourceOptions} checked and with defaults applied. */
export interface ResolvedSourceOptions extends ResolvedConnectionOptions, ResolvedScope {}

function resolveRetry(value: unknown): ResolvedRetryOptions {
  if (value === undefined) return DEFAULT_RETRY_OPTIONS;
  const r = requireObject(value, 'retry') as RetryOptions;
  // A floor of 0 would let a failing server be asked again at once, for ever.
  const minDelayMs = positiveMs(r.minDelayMs, 'retry.minDelayMs', DEFAULT_RETRY_OPTIONS.minDelayMs);
  // Longer delays are clamped to what a timer can hold (Infinity included), never passed on.
  const maxDelayMs = Math.min(r.maxDelayMs ?? Math.max(DEFAULT_RETRY_OPTIONS.maxDelayMs, minDelayMs), MAX_TIMER_MS);
  if (typeof maxDelayMs !== 'number' || Number.isNaN(maxDelayMs) || maxDelayMs < minDelayMs) {
    throw new RangeError(`retry.maxDelayMs must be a number ≥ retry.minDelayMs (${minDelayMs}) (got ${describeValue(r.maxDelayMs)})`);
  }
  const maxServerDelayMs = Math.min(positiveMs(r.maxServerDelayMs, 'retry.maxServerDelayMs', DEFAULT_RETRY_OPTIONS.maxServerDelayMs, { allowInfinity: true }), MAX_TIMER_MS);
  const minConnectionLifetimeMs = r.minConnectionLifetimeMs ?? DEFAULT_RETRY_OPTIONS.minConnectionLifetimeMs;
  if (typeof minConnectionLifetimeMs !== 'number' || !Number.isFinite(minConnectionLifetimeMs) || minConnectionLifetimeMs < 0) {
    throw new RangeError(`retry.minConnectionLifetimeMs must be a finite number of milliseconds ≥ 0 (got ${describeValue(minConnectionLifetimeMs)})`);
  }
  const factor = r.factor ?? DEFAULT_RETRY_OPTIONS.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    throw new RangeError(`retry.factor must be a finite number ≥ 1 (got ${describeValue(factor)})`);
  }
  const jitter = booleanOption(r.jitter, 'retry.jitter', DEFAULT_RETRY_OPTIONS.jitter);
  const maxAttempts = r.maxAttempts ?? DEFAULT_RETRY_OPTIONS.maxAttempts;
  if (!(maxAttempts === Infinity || (Number.isInteger(maxAttempts) && maxAttempts >= 1))) {
    throw new RangeError(`retry.maxAttempts must be a positive integer or Infinity (got ${describeValue(maxAttempts)})`);
  }
  const maxElapsedMs = positiveMs(r.maxElapsedMs, 'retry.maxElapsedMs', DEFAULT_RETRY_OPTIONS.maxElapsedMs, { allowInfinity: true });
  return { minDelayMs, maxDelayMs, maxServerDelayMs, minConnectionLifetimeMs, factor, jitter, maxAttempts, maxElapsedMs };
}

// RFC 9110 field values: no control characters (CR/LF would split headers).
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** An SMTP address that can travel in a header, or undefined. */
function mailboxOption(value: unknown, name: string): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || value === '' || !HEADER_VALUE.test(value))) {
    throw new TypeError(`${name} must be a non-empty SMTP address without control characters (got ${describeValue(value)})`);
  }
  return value;
}

/**
 * Checks what one subscription watches and applies defaults, by the same rules (and messages) the
 * Subscribe builders apply, before any I/O.
 *
 * @throws TypeError or RangeError naming the option.
 */
export function resolveScope(options: SubscriptionScopeOptions): ResolvedScope {
  const mailbox = mailboxOption(options.mailbox, 'mailbox');
  const subscribeToAllFolders = booleanOption(options.subscribeToAllFolders, 'subscribeToAllFolders', false);
  const folders = subscribeToAllFolders ? [] : (options.folders ?? ['inbox']);
  const eventTypes = options.eventTypes ?? EVENT_TYPES;
  validateSubscriptionScope({ folders, subscribeToAllFolders, eventTypes });
  return { mailbox, folders, subscribeToAllFolders, eventTypes, impersonation: mailbox === undefined ? undefined : { smtpAddress: mailbox } };
}

/**
 * Checks the connection options and applies defaults. `anchorMailbox` defaults to `defaultAnchor`
 * (a source's own mailbox).
 *
 * @throws TypeError or RangeError naming the option.
 */
export function resolveConnectionOptions(options: ConnectionOptions, defaultAnchor?: string): ResolvedConnectionOptions {
  requireObject(options, 'options');
  if (options.url === undefined) throw new TypeError('url is required');
  const url = endpointUrl(options.url, 'url');
  const auth = options.auth ?? { type: 'none' as const };
  validateAuth(auth, 'auth');

  const requestServerVersion = options.requestServerVersion ?? 'Exchange2013';
  if (!EXCHANGE_VERSIONS.includes(requestServerVersion)) {
    throw new RangeError(`requestServerVersion must be one of ${EXCHANGE_VERSIONS.join(', ')} (got ${describeValue(requestServerVersion)})`);
  }
  const headers = options.headers;
  if (headers !== undefined) {
    requireObject(headers, 'headers');
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string' || !HEADER_VALUE.test(value)) {
        // A header value may be a credential (an API key, a custom Authorization): named by type only.
        throw new TypeError(`headers["${name}"] must be a string without control characters (got ${typeof value === 'string' ? 'a string with control characters' : describeValue(value)})`);
      }
    }
  }
  const cookies = options.cookies;
  if (cookies !== undefined && (typeof cookies.cookieHeader !== 'function' || typeof cookies.storeSetCookie !== 'function')) {
    throw new TypeError('cookies must have cookieHeader and storeSetCookie methods');
  }
  optionalFunction(options.createAgent, 'createAgent');
  const affinity = booleanOption(options.affinity, 'affinity', true);
  const anchorMailbox = mailboxOption(options.anchorMailbox ?? defaultAnchor, 'anchorMailbox');
  const tls = options.tls;
  if (tls !== undefined) {
    validateTlsOptions(tls, 'tls');
    if (options.createAgent !== undefined) throw new TypeError('give tls or createAgent, not both (put the TLS settings on your agent)');
    if (url.protocol !== 'https:') throw new TypeError('tls applies only to an https url');
  }
  const signal = optionalAbortSignal(options.signal, 'signal');
  const maxEnvelopeBytes = options.maxEnvelopeBytes;
  if (maxEnvelopeBytes !== undefined && !(Number.isInteger(maxEnvelopeBytes) && maxEnvelopeBytes > 0)) {
    throw new RangeError(`maxEnvelopeBytes must be a positive integer (got ${describeValue(maxEnvelopeBytes)})`);
  }

  return {
    url,
    auth,
    requestServerVersion,
    headers,
    cookies,
    affinity,
    anchorMailbox,
    tls,
    createAgent: options.createAgent,
    requestTimeoutMs: positiveMs(options.requestTimeoutMs, 'requestTimeoutMs', 100_000),
    retry: resolveRetry(options.retry),
    unsubscribeTimeoutMs: positiveMs(options.unsubscribeTimeoutMs, 'unsubscribeTimeoutMs', 5_000),
    maxEnvelopeBytes,
    signal,
    logger: resolveLogger(options.logger),
  };
}

/**
 * Checks a source's options (its connection and what it watches) and applies defaults.
 *
 * @throws TypeError or RangeError naming the option.
 */
export function resolveSourceOptions(options: SourceOptions): ResolvedSourceOptions {
  requireObject(options, 'options');
  const scope = resolveScope(options);
  return { ...resolveConnectionOptions(options, scope.mailbox), ...scope };
}
