/**
 * Typed errors. Every error this library throws or emits is an {@link EwsBridgeError} with a stable
 * `code` (match on it, not on the message), a `retriable` flag, and the underlying `cause`.
 * Messages never contain credentials.
 */
import { scrubCredentials } from './credential-scrub.js';

/** Stable error codes. */
export type EwsBridgeErrorCode =
  | 'EWS_PARSE_ERROR'
  | 'EWS_XML_FORBIDDEN'
  | 'EWS_ENVELOPE_TOO_LARGE'
  | 'EWS_NOT_XML'
  | 'EWS_HTTP_ERROR'
  | 'EWS_RESPONSE_ERROR'
  | 'EWS_SOAP_FAULT'
  | 'EWS_AUTH_FAILED'
  | 'EWS_PEER_MISSING'
  | 'EWS_AUTODISCOVER_FAILED'
  | 'EWS_CONNECTION_FAILED'
  | 'EWS_HEARTBEAT_TIMEOUT'
  | 'EWS_CONNECTION_TAKEN'
  | 'EWS_LISTENER_FAILED'
  | 'EWS_CHECKPOINT_ERROR'
  | 'EWS_PROTOCOL_VIOLATION'
  | 'EWS_CONTENT_ENCODING'
  | 'EWS_CHECKPOINT_LOCKED'
  | 'EWS_LEASE_LOST';

/**
 * Base class of every error of this library. The message passes through `scrubCredentials`, so
 * server text quoted in it (an error page echoing our `Authorization` header) carries no credential.
 */
export class EwsBridgeError extends Error {
  /** Stable machine-readable code. */
  readonly code: EwsBridgeErrorCode;
  /** Whether the same operation may succeed if tried again later. */
  readonly retriable: boolean;

  constructor(code: EwsBridgeErrorCode, message: string, options: { retriable: boolean; cause?: unknown }) {
    super(scrubCredentials(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable;
  }
}

/** The bytes are not well-formed XML, or not a SOAP envelope we understand. */
export class EwsParseError extends EwsBridgeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EWS_PARSE_ERROR', message, { retriable: true, ...options });
  }
}

/** The XML contains a DOCTYPE or entity declaration: refused, so XXE and entity expansion cannot work. */
export class EwsXmlForbiddenError extends EwsBridgeError {
  constructor(message: string) {
    super('EWS_XML_FORBIDDEN', message, { retriable: false });
  }
}

/** One envelope grew past the configured cap (`maxEnvelopeBytes`). */
export class EwsEnvelopeTooLargeError extends EwsBridgeError {
  /** The configured cap (`maxEnvelopeBytes`), in bytes. */
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super('EWS_ENVELOPE_TOO_LARGE', `An envelope exceeded maxEnvelopeBytes (${limitBytes} bytes)`, { retriable: true });
    this.limitBytes = limitBytes;
  }
}

/** The response is not XML at all — typically an HTML error page from a proxy or load balancer. */
export class EwsNotXmlError extends EwsBridgeError {
  /** The HTTP status of the response, when known. */
  readonly httpStatus: number | undefined;
  /** The first bytes of the body (at most 200 characters), to tell what answered; credentials scrubbed. */
  readonly bodyPreview: string;
  constructor(httpStatus: number | undefined, bodyPreview: string) {
    const preview = scrubCredentials(bodyPreview);
    // 1F 8B starts a gzip stream; decoded as UTF-8 the second byte becomes U+FFFD.
    const hint = preview.startsWith('\u001f\ufffd') ? ' (the body looks gzip-compressed without a Content-Encoding header)' : '';
    super(
      'EWS_NOT_XML',
      `Expected a SOAP envelope but got non-XML${httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`}${hint}: ${JSON.stringify(preview)}`,
      { retriable: true },
    );
    this.httpStatus = httpStatus;
    this.bodyPreview = preview;
  }
}

/** An HTTP status that is not a SOAP answer (e.g. 503, 502, 404). */
export class EwsHttpError extends EwsBridgeError {
  /** The HTTP status code. */
  readonly status: number;
  /** From `Retry-After`, in milliseconds, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, options: { retryAfterMs?: number; message?: string; cause?: unknown } = {}) {
    const retriable = status === 408 || status === 429 || status >= 500;
    super('EWS_HTTP_ERROR', options.message ?? `HTTP ${status} from the EWS endpoint`, { retriable, cause: options.cause });
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * What a caller should do about an EWS response code (the wire layer's response-code table,
 * `RESPONSE_CODES` in `ews-push-bridge/wire`, gives one per code).
 * - `ok`: success.
 * - `backoff`: the server is busy; wait (`BackOffMilliseconds` when given) and retry the same call.
 * - `retry`: a transient failure; retry with the usual exponential back-off.
 * - `resubscribe`: the subscription is gone on the server; create a new one (pull: from the last
 *   watermark), then carry on.
 * - `resubscribe-without-watermark`: as `resubscribe`, but the watermark is unusable: start fresh
 *   and report the gap.
 * - `rediscover`: the mailbox moved; find its new server (Autodiscover), then resubscribe.
 * - `recover-missed`: the server dropped events but the subscription is alive; resync, keep going.
 * - `connection-taken`: another client opened a stream for our subscription; surface it.
 * - `fatal`: retrying cannot help (access denied, bad request, quota exceeded); stop and report.
 */
export type ResponseCodeAction =
  | 'ok'
  | 'backoff'
  | 'retry'
  | 'resubscribe'
  | 'resubscribe-without-watermark'
  | 'rediscover'
  | 'recover-missed'
  | 'connection-taken'
  | 'fatal';

/**
 * Details of an EWS error response (ResponseClass Error, or the detail of a SOAP fault), with what
 * to do about it. The wire layer fills `action` from its response-code table
 * (`responseMessageError`, `soapFaultError`); this module knows no codes.
 */
export interface EwsErrorDetails {
  /** The EWS `ResponseCode`, e.g. `ErrorServerBusy`. */
  readonly responseCode: string;
  /** What to do about `responseCode`; the error is retriable unless it is `fatal`. */
  readonly action: ResponseCodeAction;
  /** The server's `MessageText` (or the fault string), when it sent one. */
  readonly messageText?: string;
  /** `BackOffMilliseconds` from MessageXml (ErrorServerBusy). */
  readonly backOffMs?: number;
  /** Subscriptions the error concerns (streaming `ErrorSubscriptionIds`, or MessageXml). */
  readonly subscriptionIds?: readonly string[];
}

/**
 * An EWS response message with `ResponseClass="Error"`. `action` comes from the response-code table
 * (through `details`); retriable unless the action is `fatal`.
 */
export class EwsResponseError extends EwsBridgeError {
  /** The EWS `ResponseCode`, e.g. `ErrorSubscriptionNotFound`. */
  readonly responseCode: string;
  /** What to do about it. */
  readonly action: ResponseCodeAction;
  /** `BackOffMilliseconds` the server asked for (ErrorServerBusy), if any. */
  readonly backOffMs: number | undefined;
  /** Subscriptions the error concerns (empty when the server named none). */
  readonly subscriptionIds: readonly string[];
  constructor(details: EwsErrorDetails, code: 'EWS_RESPONSE_ERROR' | 'EWS_SOAP_FAULT' = 'EWS_RESPONSE_ERROR') {
    const text = details.messageText ? `: ${details.messageText}` : '';
    super(code, `${details.responseCode}${text}`, { retriable: details.action !== 'fatal' });
    this.responseCode = details.responseCode;
    this.action = details.action;
    this.backOffMs = details.backOffMs;
    this.subscriptionIds = details.subscriptionIds ?? [];
  }
}

/** A SOAP fault (HTTP 500), e.g. `ErrorServerBusy` or `ErrorSchemaValidation`. */
export class EwsSoapFaultError extends EwsResponseError {
  /** The SOAP `faultcode`, e.g. `a:ErrorServerBusy` or `soap:Server`. */
  readonly faultCode: string;
  constructor(faultCode: string, details: EwsErrorDetails) {
    super(details, 'EWS_SOAP_FAULT');
    this.faultCode = faultCode;
  }
}

/** The server refused our credentials (HTTP 401/403 after any refresh). Not retriable. */
export class EwsAuthError extends EwsBridgeError {
  /** The HTTP status that refused the credentials (401 or 403). */
  readonly status: number;
  constructor(status: number, message = `Authentication failed (HTTP ${status})`) {
    super('EWS_AUTH_FAILED', message, { retriable: false });
    this.status = status;
  }
}

/**
 * The bearer token function (`auth: { type: 'bearer', token: () => … }`) threw, rejected or
 * resolved to something that is not a token. Same `code` as a refused credential
 * (`EWS_AUTH_FAILED`), no HTTP status: nothing was sent.
 *
 * Not retriable — a broken credential source does not heal by waiting, and a source must not
 * retry it forever — unless the function signalled a transient failure: it threw an error whose
 * `retriable` is `true`, or a network error (its `code`, or one in its `cause` chain, is a socket
 * or DNS failure such as `ECONNRESET`, `ETIMEDOUT`, `EAI_AGAIN`, or it is a `TimeoutError`).
 * The message never contains the token; the function's own error is the `cause`.
 */
export class EwsTokenProviderError extends EwsBridgeError {
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super('EWS_AUTH_FAILED', message, options);
  }
}

/**
 * Credentials could not be obtained or used on this machine before anything was sent: for
 * Negotiate/Kerberos, no ticket and no keytab, a KDC that cannot be reached (retriable), a service
 * principal the KDC does not know. Same `code` as a refused credential (`EWS_AUTH_FAILED`), no
 * HTTP status. The message carries the GSSAPI text, never a secret.
 */
export class EwsCredentialsError extends EwsBridgeError {
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super('EWS_AUTH_FAILED', message, options);
  }
}

/**
 * An optional peer dependency that the configured option needs is not installed (or its native
 * addon failed to load), e.g. `kerberos` for `auth: { type: 'negotiate' }`. Not retriable.
 */
export class EwsPeerMissingError extends EwsBridgeError {
  /** The npm package to install. */
  readonly packageName: string;
  constructor(packageName: string, message: string, options: { cause?: unknown } = {}) {
    super('EWS_PEER_MISSING', message, { retriable: false, ...options });
    this.packageName = packageName;
  }
}

/**
 * Autodiscover found no EWS URL for a mailbox: every endpoint failed, a redirect broke a safety
 * rule (plain http, too many hops, another domain without approval, a loop), or the server said
 * the mailbox does not exist. `retriable` when only network or server failures stood in the way.
 */
export class EwsAutodiscoverError extends EwsBridgeError {
  /** The mailbox asked about. */
  readonly mailbox: string;
  constructor(mailbox: string, message: string, options: { retriable: boolean; cause?: unknown }) {
    super('EWS_AUTODISCOVER_FAILED', message, options);
    this.mailbox = mailbox;
  }
}

/**
 * The TCP/TLS connection failed or was cut. Retriable, except when the server's certificate was
 * refused (expired, untrusted, wrong host name): waiting does not fix a certificate.
 */
export class EwsConnectionError extends EwsBridgeError {
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super('EWS_CONNECTION_FAILED', message, { retriable: options.retriable ?? true, cause: options.cause });
  }
}

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

/** A streaming connection stayed silent longer than `heartbeatTimeoutMs`. */
export class EwsHeartbeatTimeoutError extends EwsBridgeError {
  /** The silence allowed (`heartbeatTimeoutMs`), in milliseconds. */
  readonly heartbeatTimeoutMs: number;
  constructor(heartbeatTimeoutMs: number) {
    super('EWS_HEARTBEAT_TIMEOUT', `No complete envelope on the streaming connection for ${heartbeatTimeoutMs} ms`, { retriable: true });
    this.heartbeatTimeoutMs = heartbeatTimeoutMs;
  }
}

/**
 * A checkpoint store could not read or write its state (e.g. a corrupt file), or refused a value
 * it must not store (an empty watermark). `code` is `EWS_CHECKPOINT_ERROR`, or
 * `EWS_CHECKPOINT_LOCKED` for {@link EwsCheckpointLockedError}.
 */
export class EwsCheckpointError extends EwsBridgeError {
  constructor(
    message: string,
    options: { cause?: unknown; retriable?: boolean } = {},
    code: 'EWS_CHECKPOINT_ERROR' | 'EWS_CHECKPOINT_LOCKED' = 'EWS_CHECKPOINT_ERROR',
  ) {
    super(code, message, { retriable: options.retriable ?? false, cause: options.cause });
  }
}

/** A legacy listener (or handler) kept failing until push semantics gave up on it. */
export class EwsListenerError extends EwsBridgeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EWS_LISTENER_FAILED', message, { retriable: false, ...options });
  }
}

/**
 * A push adapter's handler (or legacy listener) fell so far behind a source that cannot be slowed
 * down (streaming) that its backlog reached `maxBacklogNotifications`: the adapter ended the
 * subscription, as Exchange ends a push subscription whose listener does not keep up, instead of
 * holding notifications in memory without limit. Not retriable.
 */
export class EwsListenerBacklogError extends EwsListenerError {
  /** Notifications received and never answered when the adapter ended, the one that did not fit included. */
  readonly heldNotifications: number;
  /** The bound that was reached. */
  readonly maxBacklogNotifications: number;
  constructor(heldNotifications: number, maxBacklogNotifications: number, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.heldNotifications = heldNotifications;
    this.maxBacklogNotifications = maxBacklogNotifications;
  }
}

/**
 * Another GetStreamingEvents connection took over our streaming subscription
 * (`ErrorNewEventStreamConnectionOpened`): someone else is using it.
 */
export class EwsConnectionTakenError extends EwsBridgeError {
  /** The subscriptions that were taken. */
  readonly subscriptionIds: readonly string[];
  constructor(subscriptionIds: readonly string[], options: { cause?: unknown } = {}) {
    super('EWS_CONNECTION_TAKEN', 'Another connection took over the streaming subscription (ErrorNewEventStreamConnectionOpened)', {
      retriable: true,
      ...options,
    });
    this.subscriptionIds = subscriptionIds;
  }
}

/**
 * The server's answer broke the EWS protocol in a way the schema does not allow: a value the
 * protocol needs (a watermark, a subscription id, an item or folder `Id`) is empty or blank.
 * Such a value is never stored or sent back. Retriable, and handled like the response code in
 * {@link EwsProtocolError.action}: the sources make a new subscription and report a gap
 * (`eventsMayBeLost: true` when the value was a watermark — the position is unknown).
 */
export class EwsProtocolError extends EwsBridgeError {
  /** The element or attribute that broke the protocol, e.g. `Watermark` or `ItemId/@Id`. */
  readonly field: string;
  /**
   * What the response-code table would do about it: `resubscribe-without-watermark` when a
   * watermark was unusable, else `resubscribe`.
   */
  readonly action: 'resubscribe' | 'resubscribe-without-watermark';
  constructor(field: string, message: string, options: { action?: 'resubscribe' | 'resubscribe-without-watermark'; cause?: unknown } = {}) {
    super('EWS_PROTOCOL_VIOLATION', message, { retriable: true, cause: options.cause });
    this.field = field;
    this.action = options.action ?? 'resubscribe';
  }
}

/**
 * The response came with a `Content-Encoding` this library cannot decode. Requests ask for
 * `identity` and gzip, deflate and br are decoded when a proxy compresses anyway; any other
 * encoding is this error. Not retriable: the same proxy answers the same way.
 */
export class EwsContentEncodingError extends EwsBridgeError {
  /** The `Content-Encoding` value as received. */
  readonly contentEncoding: string;
  constructor(contentEncoding: string, options: { cause?: unknown } = {}) {
    super(
      'EWS_CONTENT_ENCODING',
      `The EWS response is encoded with ${JSON.stringify(contentEncoding.slice(0, 60))}, which cannot be decoded (identity, gzip, deflate and br can); check the proxy in front of Exchange`,
      { retriable: false, ...options },
    );
    this.contentEncoding = contentEncoding;
  }
}

/** Who holds a checkpoint file's lock, as its lock file says. */
export interface CheckpointLockHolder {
  /** The holder's process id. */
  readonly pid: number;
  /** The host the holder runs on. */
  readonly hostname: string;
  /** ISO-8601 time the holder took the lock. */
  readonly since: string;
}

/**
 * Another store (in this process or another, on this host or another) owns the checkpoint file:
 * two owners would overwrite each other's keys. Not retriable; `code` `EWS_CHECKPOINT_LOCKED`.
 */
export class EwsCheckpointLockedError extends EwsCheckpointError {
  /** The checkpoint file. */
  readonly path: string;
  /** The lock file (`<path>.lock`). */
  readonly lockPath: string;
  /** Who holds the lock, when the lock file could be read. */
  readonly holder: CheckpointLockHolder | undefined;
  constructor(path: string, lockPath: string, holder: CheckpointLockHolder | undefined, message: string) {
    super(message, { retriable: false }, 'EWS_CHECKPOINT_LOCKED');
    this.path = path;
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/**
 * A write fenced by a lease (a Redis checkpoint write carrying the writer's fencing token) was
 * refused because the writer no longer holds the lease: another worker took the mailbox over (a
 * higher token), or it was released. Never retriable — the new owner's checkpoint wins; stop
 * consuming the mailbox.
 */
export class EwsLeaseLostError extends EwsBridgeError {
  /** The leased resource (a mailbox, or a group key). */
  readonly resource: string;
  /** The fencing token the writer held. */
  readonly token: number;
  /** The resource's current token in the store, when it has one (a takeover makes it higher). */
  readonly currentToken: number | undefined;
  constructor(resource: string, token: number, currentToken: number | undefined, message?: string) {
    super(
      'EWS_LEASE_LOST',
      message ??
        `The lease on ${JSON.stringify(resource)} (fencing token ${token}) is no longer held` +
          (currentToken === undefined ? '' : ` (current token ${currentToken})`),
      { retriable: false },
    );
    this.resource = resource;
    this.token = token;
    this.currentToken = currentToken;
  }
}
