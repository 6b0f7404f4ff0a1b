/**
 * Errors that name one subscription of a shared GetStreamingEvents response, from a scripted
 * server on 127.0.0.1 (the simulator never sends these): a transient one makes that member
 * subscribe again after the usual back-off, told why; the other member hears nothing.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { SourceSignal, SubscribedEvent } from '../lib/sources/lifecycle.js';
import { StreamingGroup } from '../lib/sources/streaming-group.js';
import { NO_ERROR, responseEnvelope, responseMessage, streamingEnvelope, streamingMessage } from '../lib/testing/response-writer.js';
import { until } from './helpers/until.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Subscribe gives sub-1, sub-2, …; the first GetStreamingEvents reports `code` for sub-1, then every response stays open. */
async function scriptedServer(code: string): Promise<{ url: string; subscribes: () => number }> {
  let next = 0;
  let streams = 0;
  const open: ServerResponse[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      if (body.includes('Subscribe>') && !body.includes('Unsubscribe')) {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        res.end(responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, `<m:SubscriptionId>sub-${++next}</m:SubscriptionId>`)]));
      } else if (body.includes('GetStreamingEvents')) {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        res.write(streamingEnvelope([streamingMessage(NO_ERROR, { connectionStatus: 'OK' })]));
        if (++streams === 1) res.write(streamingEnvelope([streamingMessage({ code }, { errorSubscriptionIds: ['sub-1'] })]));
        open.push(res);
      } else {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
        res.end(responseEnvelope('Unsubscribe', [responseMessage('UnsubscribeResponseMessage', NO_ERROR)]));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`, subscribes: () => next };
}

describe('StreamingGroup: an error naming one subscription', () => {
  it('a transient error: that member subscribes again after the back-off, the retrying signal names the error', async () => {
    const { url } = await scriptedServer('ErrorInternalServerTransientError');
    const group = new StreamingGroup({ url, regroupDelayMs: 50, retry: { minDelayMs: 80, jitter: false } });
    const a: SourceSignal[] = [];
    const b: SourceSignal[] = [];
    const subs = [group.signals({ folders: ['inbox'] }).subscribe((s) => a.push(s))];
    await until(() => a.some((s) => s.type === 'subscribed'), 'a subscribed');
    subs.push(group.signals({ folders: ['calendar'] }).subscribe((s) => b.push(s)));
    try {
      await until(() => a.filter((s) => s.type === 'subscribed').length === 2, 'a subscribed again');
      const retrying = a.find((s) => s.type === 'retrying');
      expect(retrying).toMatchObject({ type: 'retrying', reason: 'server-error', delayMs: 80, error: { responseCode: 'ErrorInternalServerTransientError' } });
      expect(a.filter((s) => s.type === 'subscribed').map((s) => (s as SubscribedEvent).previousSubscriptionId)).toEqual([undefined, 'sub-1']);
      expect(a.find((s) => s.type === 'gap')).toMatchObject({ subscriptionKept: false, eventsMayBeLost: true });
      await until(() => a.filter((s) => s.type === 'connected').length === 2, 'a connected again');
      expect(b.filter((s) => s.type === 'retrying' || s.type === 'gap' || s.type === 'disconnected')).toEqual([]);
    } finally {
      for (const s of subs) s.unsubscribe();
      await group.close();
    }
  });

  it('a fatal error errors that member only', async () => {
    const { url } = await scriptedServer('ErrorAccessDenied');
    const group = new StreamingGroup({ url, regroupDelayMs: 50 });
    let failure: unknown;
    const b: SourceSignal[] = [];
    const subs = [group.signals({ folders: ['inbox'] }).subscribe({ error: (e: unknown) => (failure = e) })];
    await until(() => group.stats().subscriptions === 1, 'a subscribed');
    subs.push(group.signals({ folders: ['calendar'] }).subscribe((s) => b.push(s)));
    try {
      await until(() => failure !== undefined, 'a failed');
      expect(failure).toMatchObject({ responseCode: 'ErrorAccessDenied', retriable: false });
      await until(() => b.some((s) => s.type === 'keep-alive'), 'b still served');
      expect(b.filter((s) => s.type === 'disconnected' || s.type === 'gap')).toEqual([]);
    } finally {
      for (const s of subs) s.unsubscribe();
      await group.close();
    }
  });
});
