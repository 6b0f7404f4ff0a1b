import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  EwsAuthError,
  EwsConnectionError,
  EwsHeartbeatTimeoutError,
  EwsHttpError,
  EwsNotXmlError,
  EwsSoapFaultError,
} from '../lib/errors.js';
import type { EwsEnvelope } from '../lib/ews/messages.js';
import { envelopeError } from '../lib/ews/response-errors.js';
import { backOffMsFrom, parseRetryAfter } from '../lib/ews/retry-after.js';
import { EwsStreamCutError } from '../lib/errors.js';
import { createEwsAgent, openStream, postSoap, type CookieJar, type SoapRequest } from '../lib/ews/transport.js';
import {
  connectionStatusEnvelope,
  newMailEnvelope,
  serverBusyFault,
  streamingErrorEnvelope,
  subscribeErrorResponse,
  subscribeResponse,
} from './fixtures/ews-wire.js';
import { closedAfterEach } from './helpers/closed-after-each.js';
import { until } from './helpers/until.js';

const SUBSCRIBE: SoapRequest = {
  soapAction: 'http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe',
  envelope: '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>',
};
const STREAM: SoapRequest = {
  soapAction: 'http://schemas.microsoft.com/exchange/services/2006/messages/GetStreamingEvents',
  envelope: SUBSCRIBE.envelope,
};
const PASSWORD = 'hunter2-S3cret!';
const TOKEN_1 = 'tok-one-SECRET';
const TOKEN_2 = 'tok-two-SECRET';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface TestServer {
  url: string;
  requests: { headers: IncomingMessage['headers']; body: string }[];
  /** Server-side requests whose connection has closed. */
  closed: number;
  server: Server;
}

const { servers, agents } = closedAfterEach();

async function serve(handler: Handler): Promise<TestServer> {
  const state: TestServer = { url: '', requests: [], closed: 0, server: undefined as unknown as Server };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.requests.push({ headers: req.headers, body });
      res.on('close', () => state.closed++);
      handler(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  state.server = server;
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/EWS/Exchange.asmx`;
  return state;
}

function agentFor(url: string) {
  const agent = createEwsAgent({ url });
  agents.push(agent);
  return agent;
}

function xml(res: ServerResponse, body: string, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', ...headers });
  res.end(body);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

function subscriptionIdOf(envelope: EwsEnvelope): string | undefined {
  if (envelope.body.type !== 'response') return undefined;
  const message = envelope.body.messages[0];
  return message?.kind === 'Subscribe' ? message.subscriptionId : undefined;
}


describe('retry-after', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('2024-05-01T10:00:00Z');
    expect(parseRetryAfter('Wed, 01 May 2024 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 May 2024 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(['12', '99'])).toBe(12_000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-5')).toBeUndefined();
  });

  it('reads BackOffMilliseconds', () => {
    expect(backOffMsFrom({ BackOffMilliseconds: '5000' })).toBe(5000);
    expect(backOffMsFrom({ BackOffMilliseconds: 'x' })).toBeUndefined();
    expect(backOffMsFrom({})).toBeUndefined();
    expect(backOffMsFrom(undefined)).toBeUndefined();
  });
});

describe('postSoap', () => {
  it('POSTs the envelope with SOAP headers, auth, anchor mailbox and extra headers', async () => {
    const srv = await serve((_req, res) => xml(res, subscribeResponse('sub-1')));
    const envelope = await postSoap(SUBSCRIBE, {
      url: srv.url,
      auth: { type: 'basic', username: 'svc@contoso.com', password: PASSWORD },
      mailbox: 'alice@contoso.com',
      headers: { 'X-PreferServerAffinity': 'true', authorization: 'Bearer sneaky' },
      agent: agentFor(srv.url),
    });
    expect(subscriptionIdOf(envelope)).toBe('sub-1');
    const seen = srv.requests[0];
    expect(seen?.body).toBe(SUBSCRIBE.envelope);
    expect(seen?.headers['content-type']).toBe('text/xml; charset=utf-8');
    expect(seen?.headers['soapaction']).toBe(`"${SUBSCRIBE.soapAction}"`);
    expect(seen?.headers['x-anchormailbox']).toBe('alice@contoso.com');
    expect(seen?.headers['x-preferserveraffinity']).toBe('true');
    expect(seen?.headers['authorization']).toBe(`Basic ${Buffer.from(`svc@contoso.com:${PASSWORD}`).toString('base64')}`);
    expect(seen?.headers['content-length']).toBe(String(Buffer.byteLength(SUBSCRIBE.envelope)));
  });

  it('parses a response written one byte at a time, including a split UTF-8 character', async () => {
    const body = Buffer.from(subscribeErrorResponse('ErrorAccessDenied', 'Zugriff verweigert: Müller €'), 'utf8');
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      let i = 0;
      const step = () => {
        if (i >= body.length) {
          res.end();
          return;
        }
        res.write(body.subarray(i, i + 1));
        i++;
        if (i % 64 === 0) setImmediate(step);
        else step();
      };
      step();
    });
    const envelope = await postSoap(SUBSCRIBE, { url: srv.url, agent: agentFor(srv.url) });
    const error = envelopeError(envelope);
    expect(error?.responseCode).toBe('ErrorAccessDenied');
    expect(error?.action).toBe('fatal');
    expect(error?.message).toContain('Müller €');
  });

  it('maps 401 to a non-retriable EwsAuthError without the password anywhere', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="ews"' });
      res.end('denied');
    });
    const error = await rejection(
      postSoap(SUBSCRIBE, { url: srv.url, auth: { type: 'basic', username: 'svc', password: PASSWORD }, agent: agentFor(srv.url) }),
    );
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as EwsAuthError).status).toBe(401);
    expect((error as EwsAuthError).retriable).toBe(false);
    expect(srv.requests).toHaveLength(1);
    const dump = JSON.stringify(error) + String((error as Error).message) + String((error as Error).stack);
    expect(dump).not.toContain(PASSWORD);
    expect(dump).not.toContain(Buffer.from(`svc:${PASSWORD}`).toString('base64'));
  });

  it('maps 403 to EwsAuthError', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(403);
      res.end();
    });
    const error = await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent: agentFor(srv.url) }));
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as EwsAuthError).status).toBe(403);
  });

  it('calls the bearer token function again once on 401 and reuses the token afterwards', async () => {
    const srv = await serve((req, res) => {
      if (req.headers.authorization === `Bearer ${TOKEN_2}`) xml(res, subscribeResponse('sub-b'));
      else {
        res.writeHead(401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
        res.end();
      }
    });
    const tokens = [TOKEN_1, TOKEN_2];
    let calls = 0;
    const auth = { type: 'bearer' as const, token: () => Promise.resolve(tokens[calls++] ?? 'none') };
    const agent = agentFor(srv.url);
    expect(subscriptionIdOf(await postSoap(SUBSCRIBE, { url: srv.url, auth, agent }))).toBe('sub-b');
    expect(calls).toBe(2);
    expect(subscriptionIdOf(await postSoap(SUBSCRIBE, { url: srv.url, auth, agent }))).toBe('sub-b');
    expect(calls).toBe(2);
    expect(srv.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${TOKEN_1}`, `Bearer ${TOKEN_2}`, `Bearer ${TOKEN_2}`]);
  });

  it('fails with EwsAuthError after one refresh when the new token is refused too', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(401);
      res.end();
    });
    let calls = 0;
    const error = await rejection(
      postSoap(SUBSCRIBE, {
        url: srv.url,
        auth: { type: 'bearer', token: () => Promise.resolve(`${TOKEN_1}-${++calls}`) },
        agent: agentFor(srv.url),
      }),
    );
    expect(error).toBeInstanceOf(EwsAuthError);
    expect(calls).toBe(2);
    expect(srv.requests).toHaveLength(2);
    expect(JSON.stringify(error) + (error as Error).message).not.toContain(TOKEN_1);
  });

  it('maps a 500 ErrorServerBusy fault to EwsSoapFaultError with backOffMs', async () => {
    const srv = await serve((_req, res) => xml(res, serverBusyFault(5000), 500));
    const error = await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent: agentFor(srv.url) }));
    expect(error).toBeInstanceOf(EwsSoapFaultError);
    const fault = error as EwsSoapFaultError;
    expect(fault.code).toBe('EWS_SOAP_FAULT');
    expect(fault.responseCode).toBe('ErrorServerBusy');
    expect(fault.backOffMs).toBe(5000);
    expect(fault.action).toBe('backoff');
    expect(fault.retriable).toBe(true);
  });

  it('maps 503 with Retry-After seconds and with an HTTP date to EwsHttpError.retryAfterMs', async () => {
    const at = new Date(Date.now() + 60_000).toUTCString();
    let n = 0;
    const srv = await serve((_req, res) => {
      res.writeHead(503, { 'Retry-After': n++ === 0 ? '7' : at, 'Content-Type': 'text/html' });
      res.end('<html><body>Service Unavailable</body></html>');
    });
    const agent = agentFor(srv.url);
    const first = await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent }));
    expect(first).toBeInstanceOf(EwsHttpError);
    expect((first as EwsHttpError).status).toBe(503);
    expect((first as EwsHttpError).retryAfterMs).toBe(7000);
    expect((first as EwsHttpError).retriable).toBe(true);
    const second = (await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent }))) as EwsHttpError;
    // The date has one-second resolution and some milliseconds pass: generous bounds.
    expect(second.retryAfterMs).toBeGreaterThan(55_000);
    expect(second.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('maps other statuses to EwsHttpError and a 500 without a fault too', async () => {
    let n = 0;
    const srv = await serve((_req, res) => {
      if (n++ === 0) {
        res.writeHead(404);
        res.end('not here');
      } else {
        res.writeHead(500, { 'Content-Type': 'text/html' });
        res.end('<html>Runtime Error</html>');
      }
    });
    const agent = agentFor(srv.url);
    const notFound = (await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent }))) as EwsHttpError;
    expect(notFound).toBeInstanceOf(EwsHttpError);
    expect(notFound.status).toBe(404);
    expect(notFound.retriable).toBe(false);
    const broken = (await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent }))) as EwsHttpError;
    expect(broken).toBeInstanceOf(EwsHttpError);
    expect(broken.status).toBe(500);
  });

  it('maps a 200 HTML page to EwsNotXmlError', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!DOCTYPE html><html><body>Sign in</body></html>');
    });
    const error = await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent: agentFor(srv.url) }));
    expect(error).toBeInstanceOf(EwsNotXmlError);
  });

  it('maps a refused connection and a reset socket to EwsConnectionError', async () => {
    const srv = await serve((req) => req.socket.destroy());
    const reset = await rejection(postSoap(SUBSCRIBE, { url: srv.url, agent: agentFor(srv.url) }));
    expect(reset).toBeInstanceOf(EwsConnectionError);
    expect((reset as EwsConnectionError).retriable).toBe(true);

    const port = (srv.server.address() as AddressInfo).port;
    srv.server.closeAllConnections();
    srv.server.close();
    await once(srv.server, 'close');
    servers.splice(servers.indexOf(srv.server), 1);
    const refused = await rejection(postSoap(SUBSCRIBE, { url: `http://127.0.0.1:${port}/EWS/Exchange.asmx` }));
    expect(refused).toBeInstanceOf(EwsConnectionError);
    expect((refused as Error).message).toContain('ECONNREFUSED');
  });

  it('times out with EwsConnectionError and closes the socket', async () => {
    const srv = await serve(() => {
      /* never answers */
    });
    const error = await rejection(postSoap(SUBSCRIBE, { url: srv.url, requestTimeoutMs: 150, agent: agentFor(srv.url) }));
    expect(error).toBeInstanceOf(EwsConnectionError);
    expect((error as Error).message).toContain('150 ms');
    await until(() => srv.closed === 1, 'srv.closed === 1');
  });

  it('rejects with the abort reason and closes the socket', async () => {
    const srv = await serve(() => {
      /* never answers */
    });
    const controller = new AbortController();
    const pending = postSoap(SUBSCRIBE, { url: srv.url, signal: controller.signal, agent: agentFor(srv.url) });
    await until(() => srv.requests.length === 1, 'srv.requests.length === 1');
    const reason = new Error('stop');
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    await until(() => srv.closed === 1, 'srv.closed === 1');
    // Already aborted: nothing is sent.
    expect(await rejection(postSoap(SUBSCRIBE, { url: srv.url, signal: controller.signal }))).toBe(reason);
    expect(srv.requests).toHaveLength(1);
  });

  it('keeps cookies through the jar seam', async () => {
    const srv = await serve((req, res) =>
      xml(res, subscribeResponse('sub-c'), 200, req.headers.cookie ? {} : { 'Set-Cookie': 'X-BackEndOverrideCookie=MBX01~123; path=/' }),
    );
    let stored: string | undefined;
    const jar: CookieJar = {
      cookieHeader: () => stored,
      storeSetCookie: (_url, setCookie) => {
        stored = setCookie[0]?.split(';')[0];
      },
    };
    const agent = agentFor(srv.url);
    await postSoap(SUBSCRIBE, { url: srv.url, cookies: jar, agent });
    await postSoap(SUBSCRIBE, { url: srv.url, cookies: jar, agent });
    expect(srv.requests[0]?.headers.cookie).toBeUndefined();
    expect(srv.requests[1]?.headers.cookie).toBe('X-BackEndOverrideCookie=MBX01~123');
  });

  it('refuses URLs with credentials without echoing them', async () => {
    const error = await rejection(postSoap(SUBSCRIBE, { url: `http://svc:${PASSWORD}@127.0.0.1:1/EWS/Exchange.asmx` }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toContain(PASSWORD);
  });
});

describe('openStream', () => {
  it('delivers each envelope as it closes, before the response ends, and resolves on a clean end', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(newMailEnvelope('sub-1', ['item-1']));
      void released.then(() => {
        res.write(connectionStatusEnvelope('OK'));
        res.end(connectionStatusEnvelope('Closed'));
      });
    });
    const seen: EwsEnvelope[] = [];
    let opened = 0;
    const done = openStream(STREAM, {
      url: srv.url,
      agent: agentFor(srv.url),
      onOpen: ({ status }) => {
        expect(status).toBe(200);
        opened++;
      },
      onEnvelope: (envelope) => {
        seen.push(envelope);
        if (seen.length === 1) release();
      },
    });
    expect(await done).toEqual({ envelopes: 3 });
    expect(opened).toBe(1);
    const kinds = seen.map((e) => (e.body.type === 'response' && e.body.messages[0]?.kind === 'GetStreamingEvents' ? e.body.messages[0] : undefined));
    expect(kinds[0]?.notifications[0]?.events[0]).toMatchObject({ type: 'NewMail', itemId: { id: 'item-1' } });
    expect(kinds[1]?.connectionStatus).toBe('OK');
    expect(kinds[2]?.connectionStatus).toBe('Closed');
  });

  it('handles two envelopes in one chunk and one envelope split across chunks inside a UTF-8 character', async () => {
    const two = newMailEnvelope('sub-1', ['a-1']) + newMailEnvelope('sub-1', ['a-2']);
    const third = Buffer.from(newMailEnvelope('sub-1', ['ü-€-3']), 'utf8');
    const euro = third.indexOf(Buffer.from('€'));
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(two);
      res.write(third.subarray(0, euro + 1));
      setTimeout(() => {
        res.write(third.subarray(euro + 1, euro + 2));
        setTimeout(() => res.end(third.subarray(euro + 2)), 10);
      }, 10);
    });
    const ids: string[] = [];
    await openStream(STREAM, {
      url: srv.url,
      agent: agentFor(srv.url),
      onEnvelope: (envelope) => {
        if (envelope.body.type !== 'response') return;
        for (const message of envelope.body.messages) {
          if (message.kind !== 'GetStreamingEvents') continue;
          for (const n of message.notifications) for (const e of n.events) if (e.type === 'NewMail') ids.push(e.itemId?.id ?? '');
        }
      },
    });
    expect(ids).toEqual(['a-1', 'a-2', 'ü-€-3']);
  });

  it('reports a cut mid-envelope as EwsStreamCutError after delivering the complete envelopes', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      const partial = newMailEnvelope('sub-1', ['lost']);
      res.write(newMailEnvelope('sub-1', ['kept']) + partial.slice(0, partial.length / 2));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const seen: EwsEnvelope[] = [];
    const error = await rejection(openStream(STREAM, { url: srv.url, agent: agentFor(srv.url), onEnvelope: (e) => seen.push(e) }));
    expect(error).toBeInstanceOf(EwsStreamCutError);
    expect(error).toBeInstanceOf(EwsConnectionError);
    expect((error as EwsStreamCutError).midEnvelope).toBe(true);
    expect(seen).toHaveLength(1);
  });

  it('reports a cut between envelopes with midEnvelope false', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(connectionStatusEnvelope('OK'));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const error = await rejection(openStream(STREAM, { url: srv.url, agent: agentFor(srv.url), onEnvelope: () => {} }));
    expect(error).toBeInstanceOf(EwsStreamCutError);
    expect((error as EwsStreamCutError).midEnvelope).toBe(false);
  });

  it('declares a silent connection dead after idleTimeoutMs and closes it', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(connectionStatusEnvelope('OK'));
    });
    const started = performance.now();
    const error = await rejection(openStream(STREAM, { url: srv.url, heartbeatTimeoutMs: 120, agent: agentFor(srv.url), onEnvelope: () => {} }));
    expect(error).toBeInstanceOf(EwsHeartbeatTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    await until(() => srv.closed === 1, 'srv.closed === 1');
  });

  it('keeps a connection alive while whole envelopes keep coming, each within the idle limit', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      let sent = 0;
      const timer = setInterval(() => {
        sent++;
        if (sent === 25) {
          clearInterval(timer);
          res.end(connectionStatusEnvelope('Closed'));
        } else res.write(connectionStatusEnvelope('OK'));
      }, 100);
    });
    // 25 envelopes × 100 ms is past the 2 s idle limit in total, but no pause reaches it (the margin,
    // 20× the interval, absorbs a loaded machine's stalls: 150 ms against 40 ms did not).
    expect(await openStream(STREAM, { url: srv.url, heartbeatTimeoutMs: 2_000, agent: agentFor(srv.url), onEnvelope: () => {} })).toEqual({
      envelopes: 25,
    });
  });

  it('gives up a trickle that never completes an envelope: bytes alone do not reset the watchdog', async () => {
    let bytes = 0;
    let timer: NodeJS.Timeout | undefined;
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      timer = setInterval(() => {
        bytes++;
        res.write(' ');
      }, 10);
      res.on('close', () => clearInterval(timer));
    });
    try {
      const error = await rejection(openStream(STREAM, { url: srv.url, heartbeatTimeoutMs: 150, agent: agentFor(srv.url), onEnvelope: () => {} }));
      expect(error).toBeInstanceOf(EwsHeartbeatTimeoutError);
      // It was trickling the whole time: bytes kept arriving, the watchdog fired all the same.
      expect(bytes).toBeGreaterThan(1);
    } finally {
      clearInterval(timer);
    }
  });

  it('rejects with the abort reason and closes the socket', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(connectionStatusEnvelope('OK'));
    });
    const controller = new AbortController();
    const done = openStream(STREAM, {
      url: srv.url,
      signal: controller.signal,
      agent: agentFor(srv.url),
      onEnvelope: () => controller.abort('unsubscribed'),
    });
    expect(await rejection(done)).toBe('unsubscribed');
    await until(() => srv.closed === 1, 'srv.closed === 1');
  });

  it('maps a 500 fault before the stream and an in-stream fault to EwsSoapFaultError', async () => {
    let n = 0;
    const srv = await serve((_req, res) => {
      if (n++ === 0) xml(res, serverBusyFault(250), 500);
      else {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        res.write(connectionStatusEnvelope('OK') + serverBusyFault(300));
      }
    });
    const agent = agentFor(srv.url);
    const before = (await rejection(openStream(STREAM, { url: srv.url, agent, onEnvelope: () => {} }))) as EwsSoapFaultError;
    expect(before).toBeInstanceOf(EwsSoapFaultError);
    expect(before.backOffMs).toBe(250);
    let delivered = 0;
    const inStream = (await rejection(openStream(STREAM, { url: srv.url, agent, onEnvelope: () => delivered++ }))) as EwsSoapFaultError;
    expect(inStream).toBeInstanceOf(EwsSoapFaultError);
    expect(inStream.backOffMs).toBe(300);
    expect(delivered).toBe(1);
  });

  it('delivers in-stream error messages (they are the caller’s to interpret)', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.end(streamingErrorEnvelope('ErrorSubscriptionNotFound', ['sub-1']));
    });
    const errors: unknown[] = [];
    await openStream(STREAM, { url: srv.url, agent: agentFor(srv.url), onEnvelope: (e) => errors.push(envelopeError(e)) });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', action: 'resubscribe', subscriptionIds: ['sub-1'] });
  });

  it('maps 503 + Retry-After on GetStreamingEvents to EwsHttpError', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(503, { 'Retry-After': '3' });
      res.end();
    });
    const error = (await rejection(openStream(STREAM, { url: srv.url, agent: agentFor(srv.url), onEnvelope: () => {} }))) as EwsHttpError;
    expect(error).toBeInstanceOf(EwsHttpError);
    expect(error.retryAfterMs).toBe(3000);
  });
});

