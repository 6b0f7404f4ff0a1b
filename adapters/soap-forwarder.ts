/**
 * `ews-push-bridge/adapters/soap-forwarder`: keeps a legacy push listener working **unchanged**.
 * Each notification of a source is POSTed to the listener's URL as the `SendNotification` envelope
 * Exchange would have sent (schema-valid, `SOAPAction` header, `RequestServerVersion`), and the
 * listener's `SendNotificationResult` drives the subscription exactly as with push: `OK` goes on,
 * `Unsubscribe` removes the EWS subscription, and a listener that fails (connection refused,
 * timeout, a non-2xx status, a redirect, an answer that is not a `SendNotificationResult`) gets the
 * same notification again on Exchange's retry schedule until StatusFrequency would pass. Built on
 * the push-callback engine, so serialization, keep-alives and checkpointing are the same.
 *
 * What the listener gets, and what it does not:
 * - no credentials of ours: no `Authorization`, no cookies — only the envelope and, when configured,
 *   a shared-secret header or a TLS client certificate so it can tell the bridge's posts from
 *   anonymous ones (anonymous push can be forged by anyone who can reach the URL);
 * - redirects are never followed: a 3xx answer is a failed post;
 * - watermarks only where the wire had them. A streaming source's events carry none, so the
 *   envelopes carry none either (valid against the schema: `Watermark` and `PreviousWatermark` are
 *   optional since Exchange 2010 SP1) — nothing is invented. A listener that stores watermarks to
 *   resubscribe from them, or a strict proxy generated from an older schema, needs a pull or hybrid
 *   source (`pullSignals`/`hybridSignals`), whose events carry real ones. The forwarder logs a
 *   warning (once) when it forwards events without watermarks.
 *
 * ```ts
 * import { streamingSignals } from 'ews-push-bridge';
 * import { soapForwarder } from 'ews-push-bridge/adapters/soap-forwarder';
 *
 * const forwarder = soapForwarder(streamingSignals({ url: ewsUrl, auth, folders: ['inbox'] }), {
 *   url: 'https://crm.contoso.com/ExchangePush/Listener.asmx', // what Subscribe used to get
 *   statusFrequencyMinutes: 5,
 *   sharedSecret: { headerName: 'X-Bridge-Secret', value: process.env.BRIDGE_SECRET! },
 * });
 * ```
 *
 * @packageDocumentation
 */
import http from 'node:http';
import https from 'node:https';
import { type ExchangeVersion, type Logger, type PushNotification, type SourceSignal } from '../lib/index.js';
import { resolveLogger } from '../lib/logger.js';
import { EXCHANGE_VERSIONS, buildSendNotification } from '../lib/wire.js';
import { postToListener, redactUrl } from './internal/listener-post.js';
import { describeKind, describeValue, requireObject } from '../lib/validate.js';
import { pushCallback, type PushCallbackHandle, type PushCallbackOptions, type PushHandler, type PushSource } from './push-callback.js';

export type { PushCallbackEnd, PushCallbackHandle, ErrorContext, ErrorPhase } from './push-callback.js';

/** A header the listener checks to know a post came from the bridge. */
export interface SharedSecretHeader {
  /** Header name, e.g. `'X-Bridge-Secret'`. Required. */
  readonly headerName: string;
  /** Header value. Required. Never logged. */
  readonly value: string;
}

/** TLS settings for an `https` listener: a client certificate (mTLS) and whom to trust. */
export interface ListenerTlsOptions {
  /** Client certificate chain (PEM), presented to the listener. Default: none. */
  readonly cert?: string | Buffer;
  /** Private key of `cert` (PEM). Default: none. */
  readonly key?: string | Buffer;
  /** Passphrase of `key`. Default: none. */
  readonly passphrase?: string;
  /** CA certificates to trust for the listener's certificate, instead of the system's. Default: the system's. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Check the listener's certificate. Only turn off for tests. Default `true`. */
  readonly rejectUnauthorized?: boolean;
}

/** Where the legacy listener is and how to reach it: options of {@link createListenerPoster}. */
export interface ListenerPosterOptions {
  /**
   * The legacy listener's URL (http or https) — what the app used to pass to Subscribe. Must not
   * contain credentials (`user:pass@`). Required.
   */
  readonly url: string | URL;
  /**
   * `t:RequestServerVersion/@Version` in the envelopes' header: Exchange writes the version the
   * push subscription was created with. Default `'Exchange2013'`.
   */
  readonly requestServerVersion?: ExchangeVersion;
  /** The whole POST (connect, send, answer) must finish within this, or it counts as failed. Default `30_000`. */
  readonly requestTimeoutMs?: number;
  /** A header the listener can check to tell the bridge's posts from anonymous ones. Default: none. */
  readonly sharedSecret?: SharedSecretHeader;
  /** Client certificate and trust for an https listener. Default: none (system trust, no client certificate). */
  readonly tls?: ListenerTlsOptions;
  /** Largest answer accepted from the listener; a larger one is a failed post. Default `65_536`. */
  readonly maxResponseBytes?: number;
  /** Where the poster logs (never the secret, never the URL's query). Default: silent. */
  readonly logger?: Logger;
}

/** Options of {@link soapForwarder}: where the listener is, plus every {@link PushCallbackOptions} option. */
export interface SoapForwarderOptions extends PushCallbackOptions, ListenerPosterOptions {}

// RFC 9110 token and field-value rules: a name or value that could split or inject headers is refused.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const RESERVED_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'soapaction', 'host', 'transfer-encoding', 'connection']);

interface ResolvedForwarderOptions {
  readonly url: URL;
  readonly requestServerVersion: ExchangeVersion;
  readonly requestTimeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: ListenerTlsOptions | undefined;
  readonly maxResponseBytes: number;
}

function resolveForwarderOptions(options: ListenerPosterOptions): ResolvedForwarderOptions {
  requireObject(options, 'options');
  if (options.url === undefined) throw new TypeError('url is required (the legacy listener’s URL)');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`url must be an absolute http or https URL (got ${describeKind(options.url)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`url must be an absolute http or https URL (got ${describeKind(options.url)})`);
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('url must not contain credentials; use sharedSecret or a tls client certificate');
  }
  const requestServerVersion = options.requestServerVersion ?? 'Exchange2013';
  if (!EXCHANGE_VERSIONS.includes(requestServerVersion)) {
    throw new RangeError(`requestServerVersion must be one of ${EXCHANGE_VERSIONS.join(', ')} (got ${describeValue(requestServerVersion)})`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  if (typeof requestTimeoutMs !== 'number' || !Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new RangeError(`requestTimeoutMs must be a positive finite number of milliseconds (got ${describeValue(requestTimeoutMs)})`);
  }
  const maxResponseBytes = options.maxResponseBytes ?? 65_536;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1) {
    throw new RangeError(`maxResponseBytes must be a positive integer (got ${describeValue(maxResponseBytes)})`);
  }
  const headers: Record<string, string> = {};
  const secret = options.sharedSecret;
  if (secret !== undefined) {
    if (typeof secret !== 'object' || secret === null) throw new TypeError(`sharedSecret must be { headerName, value } (got ${describeKind(secret)})`);
    if (typeof secret.headerName !== 'string' || !HEADER_NAME.test(secret.headerName)) {
      throw new TypeError('sharedSecret.headerName must be an HTTP header name');
    }
    if (RESERVED_HEADERS.has(secret.headerName.toLowerCase())) {
      throw new RangeError(`sharedSecret.headerName must not be ${secret.headerName} (the forwarder sets it)`);
    }
    // The value is a secret: the message never quotes it.
    if (typeof secret.value !== 'string' || secret.value === '' || !HEADER_VALUE.test(secret.value)) {
      throw new TypeError('sharedSecret.value must be a non-empty string without control characters');
    }
    headers[secret.headerName] = secret.value;
  }
  const tls = options.tls;
  if (tls !== undefined) {
    if (typeof tls !== 'object' || tls === null) throw new TypeError(`tls must be an object (got ${describeKind(tls)})`);
    if (url.protocol !== 'https:') throw new TypeError('tls needs an https url');
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw new TypeError('tls.cert and tls.key must be given together');
    if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') throw new TypeError(`tls.rejectUnauthorized must be a boolean (got ${describeValue(tls.rejectUnauthorized)})`);
  }
  return { url, requestServerVersion, requestTimeoutMs, headers, tls, maxResponseBytes };
}

function createAgent(options: ResolvedForwarderOptions): http.Agent {
  if (options.url.protocol === 'http:') return new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const tls = options.tls ?? {};
  return new https.Agent({
    keepAlive: true,
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
    ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | (string | Buffer)[] }),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  });
}

function hasWatermarks(notification: PushNotification): boolean {
  return notification.previousWatermark !== undefined || notification.events.some((e) => e.watermark !== undefined);
}

/** Posts notifications to one legacy listener: a {@link PushHandler} plus its connection pool. */
export interface ListenerPoster {
  /** POSTs the notification as a `SendNotification` and resolves with the listener's answer; rejects on a failed post. */
  readonly post: PushHandler;
  /** Closes the connection pool (posts in flight are cut). Idempotent. */
  close(): void;
}

/**
 * The forwarder's POST on its own, to compose with `pushCallback` (e.g. to watch each answer):
 * `pushCallback(source, poster.post, options)`, then `poster.close()` once `done` settled.
 *
 * @throws TypeError / RangeError naming the option.
 */
export function createListenerPoster(options: ListenerPosterOptions): ListenerPoster {
  const resolved = resolveForwarderOptions(options);
  const logger = resolveLogger(options.logger);
  const agent = createAgent(resolved);
  let warnedNoWatermarks = false;
  const post: PushHandler = (notification) => {
    if (!warnedNoWatermarks && !hasWatermarks(notification)) {
      warnedNoWatermarks = true;
      logger.warn(
        'soap-forwarder: forwarding notifications without watermarks (the source has none, e.g. streaming); a listener that stores watermarks needs a pull or hybrid source',
        { url: redactUrl(resolved.url) },
      );
    }
    const envelope = buildSendNotification(notification, { requestServerVersion: resolved.requestServerVersion });
    return postToListener(envelope, {
      url: resolved.url,
      agent,
      headers: resolved.headers,
      requestTimeoutMs: resolved.requestTimeoutMs,
      maxResponseBytes: resolved.maxResponseBytes,
    });
  };
  return { post, close: () => agent.destroy() };
}

/**
 * Forwards a source's notifications to a legacy push listener as real `SendNotification` POSTs.
 * See the module documentation. Returns the same handle as `pushCallback`.
 *
 * @throws TypeError / RangeError naming the option, before subscribing to the source.
 */
export function soapForwarder(source: PushSource<PushNotification | SourceSignal>, options: SoapForwarderOptions): PushCallbackHandle {
  const poster = createListenerPoster(options);
  let handle: PushCallbackHandle;
  try {
    handle = pushCallback(source, poster.post, options);
  } catch (error) {
    poster.close();
    throw error;
  }
  const release = (): void => poster.close();
  void handle.done.then(release, release);
  return handle;
}
