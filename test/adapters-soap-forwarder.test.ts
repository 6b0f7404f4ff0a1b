/**
 * soap-forwarder: real POSTs to a capturing listener on 127.0.0.1, fed by EwsSimulator through
 * the streaming and pull sources. What the listener receives (SOAPAction, RequestServerVersion,
 * the events, no credentials of ours, schema validity), what its answers do (OK, Unsubscribe,
 * failures retried then given up, redirects refused, timeouts, garbage), the shared secret and mTLS.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PushCallbackHandle, ErrorContext } from '../adapters/push-callback.js';
import { soapForwarder, type SoapForwarderOptions } from '../adapters/soap-forwarder.js';
import { EwsConnectionError, EwsHttpError, EwsListenerError, EwsNotXmlError, EwsParseError } from '../lib/errors.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import type { PushNotification } from '../lib/model.js';
import { pullSignals } from '../lib/sources/pull.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf, type SimulatedEvent } from '../lib/testing/index.js';
import { manualSource, notification } from './helpers/adapter-sources.js';
import { makeTestPki, opensslAvailable, startCaptureListener, type CaptureListener, type CaptureListenerOptions } from './helpers/capture-listener.js';
import { schemaAvailable, schemaSkipReason, validateSoapBody } from './helpers/schema.js';
import { until } from './helpers/until.js';

/** until() polls on setImmediate, without timers, so it also works while setTimeout is faked. */
const NO_TIMERS = { intervalMs: 0 };

const MAILBOX = 'alice@contoso.com';
const PASSWORD = 'S3cret-p@ssw0rd!';
const AUTH = { type: 'basic', username: MAILBOX, password: PASSWORD } as const;
const SOAP_ACTION = '"http://schemas.microsoft.com/exchange/services/2006/messages/SendNotification"';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, users: { [MAILBOX]: PASSWORD } });
  cleanups.push(() => sim.close());
  return sim;
}

async function listener(options?: CaptureListenerOptions): Promise<CaptureListener> {
  const l = await startCaptureListener(options);
  cleanups.push(() => l.close());
  return l;
}

function forwarder(source: Parameters<typeof soapForwarder>[0], options: SoapForwarderOptions): PushCallbackHandle {
  const handle = soapForwarder(source, options);
  cleanups.push(() => handle.close());
  return handle;
}

function errorsRecorder() {
  const errors: { error: unknown; context: ErrorContext }[] = [];
  return { errors, onError: (error: unknown, context: ErrorContext) => void errors.push({ error, context }) };
}

/** The notification a listener received, read back with the library's own parser. */
function notificationOf(body: string): PushNotification {
  const envelope = parseEnvelope(body);
  if (envelope.body.type !== 'response') throw new Error('not a SendNotification');
  const message = envelope.body.messages[0];
  if (message?.kind !== 'SendNotification' || !message.notification) throw new Error('no notification');
  return message.notification;
}

const EVENTS: readonly SimulatedEvent[] = [
  { type: 'NewMail' },
  { type: 'Created', folder: 'calendar' },
  { type: 'Modified' },
  { type: 'Modified', on: 'folder', folder: 'inbox', unreadCount: 3 },
  { type: 'Moved', from: 'inbox', to: 'archive' },
  { type: 'Copied', from: 'archive', to: 'inbox' },
  { type: 'Created', on: 'folder', folder: 'projects' },
  { type: 'FreeBusyChanged', folder: 'calendar' },
  { type: 'Deleted' },
];

describe('soap-forwarder: what the listener receives', () => {
  it('posts every event as a SendNotification (SOAPAction, RequestServerVersion) and sends no credentials of ours', async () => {
    const sim = await simulator();
    const l = await listener();
    forwarder(streamingSignals({ url: sim.url, auth: AUTH, subscribeToAllFolders: true }), {
      url: l.url,
      requestServerVersion: 'Exchange2010_SP2',
    });
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription', NO_TIMERS);
    const delivered = EVENTS.map((e) => sim.deliver(MAILBOX, e).seq);
    const received = (): number[] => l.posts.flatMap((p) => notificationOf(p.body).events.map(sequenceOf)).filter((s): s is number => s !== undefined);
    await until(() => received().length >= delivered.length, 'every event at the listener', NO_TIMERS);
    expect(received()).toEqual(delivered);

    const subscriptionId = sim.subscriptions[0]!.id;
    for (const post of l.posts) {
      expect(post.method).toBe('POST');
      expect(post.path).toBe('/ExchangePush/Listener.asmx');
      expect(post.headers.soapaction).toBe(SOAP_ACTION);
      expect(post.headers['content-type']).toBe('text/xml; charset=utf-8');
      expect(post.headers.authorization).toBeUndefined();
      expect(post.headers.cookie).toBeUndefined();
      expect(post.body).toContain('<t:RequestServerVersion xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" Version="Exchange2010_SP2"/>');
      const n = notificationOf(post.body);
      expect(n.subscriptionId).toBe(subscriptionId);
      // Streaming has no watermarks, and the forwarder invents none.
      expect(n.previousWatermark).toBeUndefined();
      expect(n.events.every((e) => e.watermark === undefined)).toBe(true);
    }
    // The EWS password and its Basic encoding appear nowhere in what the listener got.
    const everything = l.rawText();
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(Buffer.from(`${MAILBOX}:${PASSWORD}`).toString('base64'));
    expect(everything.toLowerCase()).not.toContain('authorization');
    // …while EWS did get them (so the check above is not vacuous): the simulator only accepts this password.
    expect(sim.requests.some((r) => r.operation === 'Subscribe' && r.user === MAILBOX && r.headers.authorization === 'Basic [redacted]')).toBe(true);
  });

  it('forwards the pull source’s watermarks as the wire had them', async () => {
    const sim = await simulator();
    const l = await listener();
    forwarder(pullSignals({ url: sim.url, auth: AUTH, pollIntervalMs: 20 }), { url: l.url });
    await until(() => sim.subscriptions.length === 1, 'a pull subscription', NO_TIMERS);
    const delivered = [sim.deliver(MAILBOX, { type: 'NewMail' }), sim.deliver(MAILBOX, { type: 'Created' })];
    const withEvents = (): PushNotification[] => l.posts.map((p) => notificationOf(p.body)).filter((n) => n.events.some((e) => e.type !== 'Status'));
    await until(() => withEvents().flatMap((n) => n.events).length >= 2, 'both events', NO_TIMERS);
    const events = withEvents().flatMap((n) => n.events);
    expect(events.map((e) => e.watermark)).toEqual(delivered.map((d) => d.watermark));
    expect(withEvents()[0]!.previousWatermark).toBeDefined();
  });

  it('delivers keep-alive StatusEvents to the listener after statusFrequencyMinutes of idleness (fake clock, real sockets)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const src = manualSource();
    const l = await listener();
    forwarder(src.source, { url: l.url, statusFrequencyMinutes: 2 });
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at: new Date() });
    await vi.advanceTimersByTimeAsync(2 * 60_000 - 1);
    expect(l.posts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => l.posts.length === 1, 'the first keep-alive', NO_TIMERS);
    expect(notificationOf(l.posts[0]!.body)).toEqual({ subscriptionId: 'sub-1', moreEvents: false, events: [{ type: 'Status' }] });
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    await until(() => l.posts.length === 2, 'the second keep-alive', NO_TIMERS);
  });

  it.skipIf(!schemaAvailable)(
    `every envelope it posts validates against the EWS schema (streaming, pull, keep-alives)${schemaAvailable ? '' : ` — ${schemaSkipReason}`}`,
    async () => {
      const sim = await simulator();
      const streamingListener = await listener();
      const pullListener = await listener();
      forwarder(streamingSignals({ url: sim.url, auth: AUTH, subscribeToAllFolders: true }), { url: streamingListener.url });
      forwarder(pullSignals({ url: sim.url, auth: AUTH, pollIntervalMs: 20, subscribeToAllFolders: true }), { url: pullListener.url });
      await until(() => sim.subscriptions.length === 2 && sim.subscriptions.some((s) => s.connected), 'both subscriptions', NO_TIMERS);
      for (const e of EVENTS) sim.deliver(MAILBOX, e);
      const count = (l: CaptureListener): number => l.posts.flatMap((p) => notificationOf(p.body).events).filter((e) => e.type !== 'Status').length;
      await until(() => count(streamingListener) >= EVENTS.length && count(pullListener) >= EVENTS.length, 'every event at both listeners', NO_TIMERS);
      // A synthesized keep-alive of each kind (with and without a watermark), through the same path.
      const src = manualSource();
      const statusListener = await listener();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      forwarder(src.source, { url: statusListener.url, statusFrequencyMinutes: 1 });
      src.notify(notification('sub-w', [{ type: 'Status', watermark: 'AQAAAA==' }]));
      src.emit({ type: 'subscribed', subscriptionId: 'sub-n', at: new Date() });
      await vi.advanceTimersByTimeAsync(60_000);
      await until(() => statusListener.posts.length === 2, 'two keep-alives', NO_TIMERS);
      vi.useRealTimers();

      const bodies = [...streamingListener.posts, ...pullListener.posts, ...statusListener.posts].map((p) => p.body);
      expect(bodies.length).toBeGreaterThanOrEqual(4);
      const results = await Promise.all(bodies.map((b) => validateSoapBody(b)));
      const invalid = results.map((r, i) => ({ r, body: bodies[i] })).filter(({ r }) => !r.valid);
      expect(invalid.map(({ r, body }) => ({ errors: r.errors, body }))).toEqual([]);
    },
  );
});

describe('soap-forwarder: what the listener’s answers do', () => {
  it("an 'Unsubscribe' answer removes the EWS subscription", async () => {
    const sim = await simulator();
    const l = await listener({ answer: () => 'Unsubscribe' });
    const handle = forwarder(streamingSignals({ url: sim.url, auth: AUTH }), { url: l.url });
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription', NO_TIMERS);
    const subscriptionId = sim.subscriptions[0]!.id;
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await expect(handle.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId });
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'EWS Unsubscribe', NO_TIMERS);
    await until(() => sim.subscriptions.length === 0, 'the subscription gone', NO_TIMERS);
  });

  it('a failing listener gets the same envelope again on the schedule, and is given up on when the next retry would pass StatusFrequency', async () => {
    const src = manualSource();
    const l = await listener({ answer: () => ({ status: 500, body: 'Internal Server Error' }) });
    const { errors, onError } = errorsRecorder();
    // Waits 100 ms, then 60 s — which would pass the 1-minute StatusFrequency: two attempts.
    const handle = forwarder(src.source, { url: l.url, statusFrequencyMinutes: 1, retryScheduleMs: [100, 60_000], onError });
    src.notify(notification('sub-1'));
    const error = await handle.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EwsListenerError);
    expect((error as Error).cause).toBeInstanceOf(EwsHttpError);
    expect(l.posts).toHaveLength(2);
    expect(l.posts[1]!.body).toBe(l.posts[0]!.body);
    expect(errors.map((e) => [e.context.fatal, e.context.retryInMs])).toEqual([
      [false, 100],
      [true, undefined],
    ]);
    expect((errors[0]!.error as EwsHttpError).message).toMatch(/^The push listener at http:\/\/127\.0\.0\.1:\d+\/ExchangePush\/Listener\.asmx answered HTTP 500$/);
    expect(src.subscribed()).toBe(false);
  });

  it('a listener that recovers gets the notification again and the next ones after it', async () => {
    const src = manualSource();
    const l = await listener({ answer: (_post, i) => (i < 2 ? { status: 503 } : 'OK') });
    const handle = forwarder(src.source, { url: l.url, retryScheduleMs: [20], onError: () => {} });
    const first = notification('sub-1');
    const second = notification('sub-1');
    src.notify(first);
    src.notify(second);
    await until(() => l.posts.length === 4, 'four posts', NO_TIMERS);
    const ids = l.posts.map((p) => {
      const e = notificationOf(p.body).events[0];
      return e?.type === 'NewMail' ? e.itemId?.id : undefined;
    });
    const idOf = (n: PushNotification): string | undefined => (n.events[0]?.type === 'NewMail' ? n.events[0].itemId?.id : undefined);
    expect(ids).toEqual([idOf(first), idOf(first), idOf(first), idOf(second)]);
    expect(handle.closed).toBe(false);
  });

  it('refuses redirects: a 3xx is a failed post and the Location is never contacted', async () => {
    const elsewhere = await listener();
    const l = await listener({ answer: () => ({ status: 307, headers: { Location: elsewhere.url } }) });
    const src = manualSource();
    const { errors, onError } = errorsRecorder();
    const handle = forwarder(src.source, { url: l.url, onError });
    src.notify(notification('sub-1'));
    await until(() => errors.length === 1, 'the failure reported', NO_TIMERS);
    const error = errors[0]!.error as EwsHttpError;
    expect(error).toBeInstanceOf(EwsHttpError);
    expect(error.status).toBe(307);
    expect(error.message).toMatch(/answered HTTP 307 \(a redirect\); redirects are not followed$/);
    expect(errors[0]!.context).toMatchObject({ fatal: false, retryInMs: 30_000 });
    await handle.close();
    expect(elsewhere.posts).toHaveLength(0);
    for (const status of [301, 302, 303, 308]) {
      const other = await listener({ answer: () => ({ status, headers: { Location: elsewhere.url } }) });
      const s = manualSource();
      const rec = errorsRecorder();
      const h = forwarder(s.source, { url: other.url, onError: rec.onError });
      s.notify(notification('sub-1'));
      await until(() => rec.errors.length === 1, `HTTP ${status} reported`, NO_TIMERS);
      expect((rec.errors[0]!.error as EwsHttpError).status).toBe(status);
      await h.close();
    }
    expect(elsewhere.posts).toHaveLength(0);
  });

  it('a listener that does not answer in time, or answers something else than a SendNotificationResult, failed', async () => {
    const cases: { answer: CaptureListenerOptions['answer']; expected: (e: unknown) => void }[] = [
      {
        answer: () => 'hang',
        expected: (e) => {
          expect(e).toBeInstanceOf(EwsConnectionError);
          expect((e as Error).message).toMatch(/did not answer within 200 ms$/);
        },
      },
      { answer: () => ({ body: '<html><body>It works!</body></html>', headers: { 'Content-Type': 'text/html' } }), expected: (e) => expect(e).toBeInstanceOf(EwsNotXmlError) },
      { answer: () => ({ body: '' }), expected: (e) => expect(e).toBeInstanceOf(EwsNotXmlError) },
      {
        answer: () => ({ body: '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SendNotificationResult xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:SubscriptionStatus>Maybe</m:SubscriptionStatus></m:SendNotificationResult></s:Body></s:Envelope>' }),
        expected: (e) => expect(e).toBeInstanceOf(EwsParseError),
      },
      {
        answer: () => ({
          body: '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>',
        }),
        expected: (e) => {
          expect(e).toBeInstanceOf(EwsParseError);
          expect((e as Error).message).toBe('The push listener answered with a SOAP fault, not a SendNotificationResult');
        },
      },
      { answer: () => ({ body: 'x'.repeat(2_000) }), expected: (e) => expect((e as Error).message).toMatch(/exceeded 1000 bytes/) },
    ];
    for (const c of cases) {
      const l = await listener({ answer: c.answer });
      const src = manualSource();
      const { errors, onError } = errorsRecorder();
      const handle = forwarder(src.source, { url: l.url, requestTimeoutMs: 200, maxResponseBytes: 1_000, onError });
      src.notify(notification('sub-1'));
      await until(() => errors.length === 1, 'the failure reported', NO_TIMERS);
      c.expected(errors[0]!.error);
      expect(errors[0]!.context.retryInMs).toBe(30_000);
      await handle.close();
    }
  });

  it('a listener that cannot be reached failed with EwsConnectionError', async () => {
    const l = await listener();
    const url = l.url;
    await l.close();
    const src = manualSource();
    const { errors, onError } = errorsRecorder();
    const handle = forwarder(src.source, { url, onError });
    src.notify(notification('sub-1'));
    await until(() => errors.length === 1, 'the failure reported', NO_TIMERS);
    expect(errors[0]!.error).toBeInstanceOf(EwsConnectionError);
    expect((errors[0]!.error as Error).message).toMatch(/could not be reached \(ECONNREFUSED\)$/);
    await handle.close();
  });
});

describe('soap-forwarder: telling the bridge’s posts from anonymous ones', () => {
  it('sends the shared-secret header, and never puts it into errors or logs', async () => {
    const secret = 'b7c1-shared-secret-9f';
    const l = await listener({ answer: (post) => (post.headers['x-bridge-secret'] === secret ? { status: 500 } : 'OK') });
    const src = manualSource();
    const lines: string[] = [];
    const logger = {
      debug: (m: string, f?: object) => void lines.push(m + JSON.stringify(f ?? {})),
      info: (m: string, f?: object) => void lines.push(m + JSON.stringify(f ?? {})),
      warn: (m: string, f?: object) => void lines.push(m + JSON.stringify(f ?? {})),
      error: (m: string, f?: object) => void lines.push(m + JSON.stringify(f ?? {})),
    };
    const { errors, onError } = errorsRecorder();
    const handle = forwarder(src.source, { url: `${l.url}?token=abc`, sharedSecret: { headerName: 'X-Bridge-Secret', value: secret }, logger, onError });
    src.notify(notification('sub-1'));
    await until(() => errors.length === 1, 'the failure reported', NO_TIMERS);
    expect(l.posts[0]!.rawHeaders).toContain('X-Bridge-Secret');
    expect(l.posts[0]!.headers['x-bridge-secret']).toBe(secret);
    await handle.close();
    const said = lines.join('\n') + String(errors[0]!.error) + JSON.stringify(errors[0]!.context);
    expect(said).not.toContain(secret);
    expect(said).not.toContain('token=abc');
    expect(lines.some((line) => line.startsWith('soap-forwarder: forwarding notifications without watermarks'))).toBe(true);
  });

  it.skipIf(!opensslAvailable())('presents a TLS client certificate (mTLS) and trusts the given CA', async () => {
    const pki = makeTestPki();
    const l = await listener({ tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true } });
    const src = manualSource();
    const handle = forwarder(src.source, { url: l.url, tls: { cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert } });
    src.notify(notification('sub-1'));
    await until(() => l.posts.length === 1, 'the post', NO_TIMERS);
    expect(l.posts[0]!.clientCertCN).toBe('ews-push-bridge');
    await handle.close();

    // Without the CA, the listener's certificate is refused: a failed post, not a silent success.
    const src2 = manualSource();
    const { errors, onError } = errorsRecorder();
    const handle2 = forwarder(src2.source, { url: l.url, onError });
    src2.notify(notification('sub-1'));
    await until(() => errors.length === 1, 'the TLS failure reported', NO_TIMERS);
    expect(errors[0]!.error).toBeInstanceOf(EwsConnectionError);
    expect(l.posts).toHaveLength(1);
    await handle2.close();
  });
});

describe('soap-forwarder: arguments', () => {
  it('names the bad option', () => {
    const src = manualSource();
    const make = (options: Partial<SoapForwarderOptions>) => () => soapForwarder(src.source, { url: 'http://127.0.0.1:1/push', ...options } as SoapForwarderOptions);
    expect(make({ url: undefined as never })).toThrow(/url is required/);
    expect(make({ url: 'ftp://x/y' })).toThrow(/url must be an absolute http or https URL/);
    expect(make({ url: 'http://user:pass@127.0.0.1/push' })).toThrow(/url must not contain credentials/);
    expect(make({ requestServerVersion: 'Exchange2007' as never })).toThrow(/requestServerVersion must be one of/);
    expect(make({ requestTimeoutMs: 0 })).toThrow(/requestTimeoutMs must be a positive finite number/);
    expect(make({ maxResponseBytes: 1.5 })).toThrow(/maxResponseBytes must be a positive integer/);
    expect(make({ sharedSecret: { headerName: 'Bad Header', value: 'x' } })).toThrow(/sharedSecret.headerName must be an HTTP header name/);
    expect(make({ sharedSecret: { headerName: 'SOAPAction', value: 'x' } })).toThrow(/sharedSecret.headerName must not be SOAPAction/);
    expect(make({ sharedSecret: { headerName: 'X-Secret', value: 'a\r\nInjected: 1' } })).toThrow(/sharedSecret.value must be a non-empty string without control characters/);
    expect(make({ tls: { ca: 'x' } })).toThrow(/tls needs an https url/);
    expect(make({ url: 'https://127.0.0.1/push', tls: { cert: 'x' } })).toThrow(/tls.cert and tls.key must be given together/);
    expect(make({ statusFrequencyMinutes: 2000 })).toThrow(/statusFrequencyMinutes must be 1–1440/);
    expect(src.subscribed()).toBe(false);
  });
});
