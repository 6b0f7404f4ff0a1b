/**
 * One POST of a `SendNotification` envelope to a legacy push listener, and its answer.
 *
 * Deliberately small and strict: `node:http(s)` only (which never follows redirects on its own),
 * no credentials of ours, a hard deadline on the whole exchange, a cap on the answer's size, and
 * every failure turned into a typed error that says what the listener did.
 *
 * @packageDocumentation
 */
import http from 'node:http';
import https from 'node:https';
import { EwsConnectionError, EwsHttpError, EwsParseError } from '../../lib/entry-errors.js';
import { type SubscriptionStatus } from '../../lib/index.js';
import { SOAP_ACTIONS, parseEnvelope } from '../../lib/wire.js';

/** What {@link postToListener} needs. */
export interface ListenerPostOptions {
  readonly url: URL;
  readonly agent: http.Agent;
  /** Extra request headers (the shared secret). */
  readonly headers: Readonly<Record<string, string>>;
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
}

/** The listener URL as it may appear in errors and logs: no query (it may carry a token). */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * POSTs `envelope` and resolves with the listener's `SubscriptionStatus`.
 *
 * @throws EwsHttpError for any status but 2xx (a 3xx says it was a redirect, not followed),
 *   EwsConnectionError when the listener cannot be reached or misses the deadline,
 *   EwsParseError / EwsNotXmlError when the answer is not a `SendNotificationResult`.
 */
export function postToListener(envelope: string, options: ListenerPostOptions): Promise<SubscriptionStatus> {
  const { url, requestTimeoutMs, maxResponseBytes } = options;
  const body = Buffer.from(envelope, 'utf8');
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<SubscriptionStatus>((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, status?: SubscriptionStatus): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (error === undefined && status !== undefined) resolve(status);
      else reject(error);
    };
    const req = request(url, {
      method: 'POST',
      agent: options.agent,
      headers: {
        ...options.headers,
        'Content-Type': 'text/xml; charset=utf-8',
        SOAPAction: `"${SOAP_ACTIONS.SendNotification}"`,
        'Content-Length': String(body.length),
        Accept: 'text/xml',
        'User-Agent': 'ews-push-bridge',
      },
    });
    const deadline = setTimeout(() => {
      finish(new EwsConnectionError(`The push listener at ${redactUrl(url)} did not answer within ${requestTimeoutMs} ms`));
      req.destroy();
    }, requestTimeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      finish(new EwsConnectionError(`The push listener at ${redactUrl(url)} could not be reached (${error.code ?? error.message})`, { cause: error }));
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        // Read and drop the body so the socket can be reused; what the listener says is not needed.
        res.resume();
        res.on('error', () => undefined);
        const redirect = status >= 300 && status < 400;
        finish(
          new EwsHttpError(status, {
            message: redirect
              ? `The push listener at ${redactUrl(url)} answered HTTP ${status} (a redirect); redirects are not followed`
              : `The push listener at ${redactUrl(url)} answered HTTP ${status}`,
          }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxResponseBytes) {
          finish(new EwsParseError(`The push listener's answer exceeded ${maxResponseBytes} bytes`));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => finish(new EwsConnectionError(`The push listener's answer was cut off`, { cause: error })));
      res.on('end', () => {
        if (settled) return;
        try {
          const answer = parseEnvelope(Buffer.concat(chunks), { httpStatus: status, maxEnvelopeBytes: maxResponseBytes });
          if (answer.body.type !== 'sendNotificationResult') {
            throw new EwsParseError(`The push listener answered with a SOAP ${answer.body.type === 'fault' ? 'fault' : 'response'}, not a SendNotificationResult`);
          }
          finish(undefined, answer.body.subscriptionStatus);
        } catch (error) {
          finish(error);
        }
      });
    });
    req.end(body);
  });
}
