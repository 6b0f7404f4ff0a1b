/**
 * Issue 13: errors never quote credentials (a server echoing our Authorization header in its
 * error body), and compressed bodies (requests ask for `identity`; gzip/deflate/br from a proxy
 * that compresses anyway are decoded, streaming included; an unknown encoding is a typed,
 * non-retriable error naming it).
 */
import type { ServerResponse } from 'node:http';
import { brotliCompressSync, constants, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsBridgeError, EwsContentEncodingError, EwsNotXmlError } from '../../lib/errors.js';
import { REDACTED, scrubCredentials } from '../../lib/credential-scrub.js';
import type { EwsEnvelope } from '../../lib/ews/messages.js';
import { SOAP_ACTIONS, buildGetStreamingEventsRequest, buildUnsubscribeRequest } from '../../lib/ews/requests.js';
import { openStream, postSoap } from '../../lib/ews/transport.js';
import type { EwsAuth } from '../../lib/ews/auth-header.js';
import { pullSignals } from '../../lib/sources/pull.js';
import { NO_ERROR, faultEnvelope, responseEnvelope, responseMessage, streamingEnvelope, streamingMessage } from '../../lib/testing/response-writer.js';
import { ntlmChallengeMessage } from '../../lib/testing/auth.js';
import { answer, describeError, run, scriptedServer, until, type Handler, type Run, type ScriptedServer } from './scripted-server.js';

const servers: ScriptedServer[] = [];
const runs: Run[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) r.stop();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(handlers: Parameters<typeof scriptedServer>[0]): Promise<ScriptedServer> {
  const s = await scriptedServer(handlers);
  servers.push(s);
  return s;
}

const UNSUBSCRIBE = { soapAction: SOAP_ACTIONS.Unsubscribe, envelope: buildUnsubscribeRequest({ subscriptionId: 'sub-1' }) };
const UNSUBSCRIBE_OK = responseEnvelope('Unsubscribe', [responseMessage('UnsubscribeResponseMessage', NO_ERROR)]);

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** Every string an error carries (message, preview, cause chain). */
function textsOf(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    parts.push(e.message, String((e as { bodyPreview?: unknown }).bodyPreview ?? ''), String(e.stack ?? ''));
  }
  return parts.join('\n');
}

describe('errors never quote credentials', () => {
  const PASSWORD = 'Tr0ub4dor&3-horse';
  const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
  const basic = `Basic ${Buffer.from(`alice@contoso.com:${PASSWORD}`).toString('base64')}`;
  const cases: Array<[string, EwsAuth, string[]]> = [
    ['Basic', { type: 'basic', username: 'alice@contoso.com', password: PASSWORD }, [Buffer.from(`alice@contoso.com:${PASSWORD}`).toString('base64'), PASSWORD]],
    ['Bearer', { type: 'bearer', token: TOKEN }, [TOKEN]],
    ['Bearer from a function', { type: 'bearer', token: () => Promise.resolve(`${TOKEN}-fn`) }, [`${TOKEN}-fn`]],
  ];

  /** An error page quoting the request back, the way a broken proxy's debug page does. */
  const echoPage = (authorization: string, extra = ''): string =>
    `<html><body><h1>Bad Request</h1><pre>POST /EWS/Exchange.asmx HTTP/1.1\r\nAuthorization: ${authorization}\r\nHost: x\r\n</pre>${extra}</body></html>`;

  for (const [scheme, auth, secrets] of cases) {
    for (const status of [200, 500] as const) {
      it(`${scheme}: an HTTP ${status} page echoing the Authorization header → no credential in message, preview or cause`, async () => {
        const s = await server({ Unsubscribe: (res, r) => answer(res, status, echoPage(String(r.headers.authorization)), { 'Content-Type': 'text/html' }) });
        const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url, auth }));
        expect(error).toBeInstanceOf(EwsBridgeError);
        const echoed = String(s.requests[0]?.headers.authorization);
        expect(echoed.length).toBeGreaterThan(10);
        const text = textsOf(error);
        expect(text).toContain(REDACTED);
        expect(text).not.toContain(echoed.slice(echoed.indexOf(' ') + 1));
        for (const secret of secrets) expect(text).not.toContain(secret);
        if (status === 200) {
          expect(error).toBeInstanceOf(EwsNotXmlError);
          expect((error as EwsNotXmlError).bodyPreview).toContain(`Authorization: ${REDACTED}`);
        }
      });
    }
  }

  it('a SOAP fault whose text quotes the password and the Basic token → scrubbed from the EwsSoapFaultError', async () => {
    const auth: EwsAuth = { type: 'basic', username: 'alice@contoso.com', password: PASSWORD };
    const s = await server({
      Unsubscribe: (res, r) => answer(res, 500, faultEnvelope('ErrorInvalidRequest', `Bad credentials ${PASSWORD} in header ${String(r.headers.authorization)}`)),
    });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url, auth }));
    expect(error).toMatchObject({ code: 'EWS_SOAP_FAULT', responseCode: 'ErrorInvalidRequest' });
    expect(textsOf(error)).not.toContain(PASSWORD);
    expect(textsOf(error)).not.toContain(basic.slice(6));
  });

  it('NTLM: a challenge-round echo of the Type 1/Type 3 message → no NTLM token in the error', async () => {
    // The server asks for NTLM, then answers the authenticated request with a page quoting it.
    const ntlmServer: Handler = (res, r) => {
        const authorization = String(r.headers.authorization ?? '');
        if (authorization === '' || authorization === 'undefined') {
          res.writeHead(401, { 'WWW-Authenticate': 'NTLM' });
          return void res.end();
        }
        if (/^NTLM TlRMTVNTUAAB/.test(authorization)) {
          const type2 = ntlmChallengeMessage(Buffer.from('0123456789abcdef', 'hex'));
          res.writeHead(401, { 'WWW-Authenticate': `NTLM ${type2.toString('base64')}` });
          return void res.end();
        }
        answer(res, 200, echoPage(authorization, `<p>auth=${authorization}</p>`), { 'Content-Type': 'text/html' });
      };
    // The negotiation round carries no body, so it reaches the server as an "Other" request.
    const s = await server({ Unsubscribe: ntlmServer, Other: ntlmServer });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url, auth: { type: 'ntlm', username: 'CONTOSO\\alice', password: PASSWORD } }));
    const type3 = s.requests.map((r) => String(r.headers.authorization)).find((a) => a.startsWith('NTLM TlRMTVNTUAAD'));
    expect(type3, 'the client sent a Type 3 message').toBeDefined();
    expect(error, describeError(error)).toBeInstanceOf(EwsNotXmlError);
    const text = textsOf(error);
    expect(text).not.toContain(type3!.slice(5, 40));
    expect(text).not.toContain(PASSWORD);
  });

  it('a pull source against an echoing server: the retrying signal and its log line carry no credential', async () => {
    const lines: string[] = [];
    const logger = { debug: () => {}, info: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})), warn: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})), error: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})) };
    const s = await server({ Subscribe: (res, r) => answer(res, 200, echoPage(String(r.headers.authorization)), { 'Content-Type': 'text/html' }) });
    const r = run(pullSignals({ url: s.url, auth: { type: 'basic', username: 'alice@contoso.com', password: PASSWORD }, logger, retry: { minDelayMs: 10, jitter: false } }));
    runs.push(r);
    await until(() => r.signals.some((x) => x.type === 'retrying'), 'a retry');
    r.stop();
    const all = r.errors().map(textsOf).join('\n') + lines.join('\n');
    expect(all).toContain(REDACTED);
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(basic.slice(6));
  });

  it('scrubCredentials: header lines, JSON pairs and scheme tokens; ordinary words stay', () => {
    expect(scrubCredentials('Authorization: Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag')).toBe(`Authorization: ${REDACTED}`);
    expect(scrubCredentials('proxy-authorization=Basic dXNlcjpwYXNz;next')).toBe(`proxy-authorization=${REDACTED};next`);
    expect(scrubCredentials('{"authorization": "Bearer abc.def.ghi", "x": 1}')).toBe(`{"authorization": ${REDACTED}, "x": 1}`);
    expect(scrubCredentials('token was Bearer abcdefgh12345678 here')).toBe(`token was Bearer ${REDACTED} here`);
    expect(scrubCredentials('NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==')).toBe(`NTLM ${REDACTED}`);
    expect(scrubCredentials('Basic authentication failed; use Negotiate authentication')).toBe('Basic authentication failed; use Negotiate authentication');
    expect(scrubCredentials('ErrorServerBusy: The server cannot service this request right now.')).toBe('ErrorServerBusy: The server cannot service this request right now.');
  });
});

const SUBSCRIBE_OK = responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, '<m:SubscriptionId>sub-1</m:SubscriptionId><m:Watermark>wm-0</m:Watermark>')]);

describe('encoded bodies', () => {
  it('asks for Accept-Encoding: identity', async () => {
    const s = await server({ Unsubscribe: (res) => answer(res, 200, UNSUBSCRIBE_OK) });
    await postSoap(UNSUBSCRIBE, { url: s.url });
    expect(s.requests[0]?.headers['accept-encoding']).toBe('identity');
  });

  const encoders: Array<[string, (b: Buffer) => Buffer]> = [
    ['gzip', (b) => gzipSync(b)],
    ['x-gzip', (b) => gzipSync(b)],
    ['deflate', (b) => deflateSync(b)],
    ['br', (b) => brotliCompressSync(b)],
  ];
  for (const [encoding, encode] of encoders) {
    it(`a ${encoding} body from a proxy that compresses anyway is decoded`, async () => {
      const s = await server({ Unsubscribe: (res) => answer(res, 200, encode(Buffer.from(SUBSCRIBE_OK)), { 'Content-Type': 'text/xml', 'Content-Encoding': encoding }) });
      const envelope = await postSoap(UNSUBSCRIBE, { url: s.url });
      expect(envelope.body).toMatchObject({ type: 'response', messages: [{ kind: 'Subscribe', subscriptionId: 'sub-1', watermark: 'wm-0' }] });
    });
  }

  it('a gzip SOAP fault (HTTP 500) is decoded and typed', async () => {
    const s = await server({
      Unsubscribe: (res) => answer(res, 500, gzipSync(faultEnvelope('ErrorServerBusy', 'busy', { messageXml: { BackOffMilliseconds: '1500' } })), { 'Content-Type': 'text/xml', 'Content-Encoding': 'gzip' }),
    });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url }));
    expect(error).toMatchObject({ code: 'EWS_SOAP_FAULT', responseCode: 'ErrorServerBusy', backOffMs: 1500 });
  });

  it('a gzip GetStreamingEvents response split across chunks delivers each envelope as it is flushed', async () => {
    const envelopes = [
      streamingEnvelope([streamingMessage(NO_ERROR, { connectionStatus: 'OK' })]),
      streamingEnvelope([streamingMessage(NO_ERROR, { notifications: [{ subscriptionId: 'sub-1', events: [{ type: 'NewMail', timeStamp: '2026-01-01T00:00:00Z', itemId: { id: 'AAMk1' }, parentFolderId: { id: 'AAMkInbox' } } as never] }] })]),
      streamingEnvelope([streamingMessage(NO_ERROR, { connectionStatus: 'Closed' })]),
    ];
    let streamRes: ServerResponse | undefined;
    const gzip = createGzip();
    const s = await server({
      GetStreamingEvents: (res) => {
        streamRes = res;
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Encoding': 'gzip' });
        // Compressed bytes reach the wire in small pieces, cutting envelopes and gzip blocks.
        gzip.on('data', (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i += 7) res.write(chunk.subarray(i, i + 7));
        });
        gzip.on('end', () => res.end());
      },
    });
    const received: EwsEnvelope[] = [];
    let waiter: (() => void) | undefined;
    const done = openStream(
      { soapAction: SOAP_ACTIONS.GetStreamingEvents, envelope: buildGetStreamingEventsRequest({ subscriptionIds: ['sub-1'] }) },
      {
        url: s.url,
        onEnvelope: (envelope) => {
          received.push(envelope);
          waiter?.();
        },
      },
    );
    const next = (count: number): Promise<void> =>
      new Promise<void>((resolve) => {
        waiter = () => {
          if (received.length >= count) resolve();
        };
        waiter();
      });
    await until(() => streamRes !== undefined, 'the stream');
    // One envelope at a time, each flushed: the client must have it before the next is written.
    for (let i = 0; i < envelopes.length; i++) {
      gzip.write(envelopes[i]!);
      gzip.flush(constants.Z_SYNC_FLUSH);
      await next(i + 1);
    }
    gzip.end();
    await expect(done).resolves.toEqual({ envelopes: 3 });
    expect(received.map((e) => (e.body.type === 'response' ? e.body.messages[0] : undefined))).toMatchObject([
      { connectionStatus: 'OK' },
      { notifications: [{ subscriptionId: 'sub-1', events: [{ type: 'NewMail', itemId: { id: 'AAMk1' } }] }] },
      { connectionStatus: 'Closed' },
    ]);
  });

  it('an unknown Content-Encoding is a typed, non-retriable error naming it', async () => {
    const s = await server({ Unsubscribe: (res) => answer(res, 200, 'zzzz', { 'Content-Type': 'text/xml', 'Content-Encoding': 'zstd' }) });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url }));
    expect(error).toBeInstanceOf(EwsContentEncodingError);
    expect(error).toMatchObject({ code: 'EWS_CONTENT_ENCODING', retriable: false, contentEncoding: 'zstd' });
    expect((error as Error).message).toContain('zstd');
  });

  it('a corrupt gzip body is a typed parse error naming the encoding, not a cut connection', async () => {
    const bad = gzipSync(Buffer.from(UNSUBSCRIBE_OK));
    bad[20] = (bad[20] ?? 0) ^ 0xff;
    bad[21] = (bad[21] ?? 0) ^ 0xff;
    const s = await server({ Unsubscribe: (res) => answer(res, 200, bad, { 'Content-Type': 'text/xml', 'Content-Encoding': 'gzip' }) });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url }));
    expect(error, describeError(error)).toMatchObject({ code: 'EWS_PARSE_ERROR' });
    expect((error as Error).message).toContain('gzip');
  });

  it('an unlabelled gzip body is "not XML" with a hint that names gzip', async () => {
    const s = await server({ Unsubscribe: (res) => answer(res, 200, gzipSync(Buffer.from(UNSUBSCRIBE_OK)), { 'Content-Type': 'text/xml' }) });
    const error = await failure(postSoap(UNSUBSCRIBE, { url: s.url }));
    expect(error).toBeInstanceOf(EwsNotXmlError);
    expect((error as Error).message).toContain('gzip');
  });
});
