/**
 * A server that loses every new subscription at once (a load balancer that sends GetStreamingEvents
 * to a server that does not hold it, a mailbox mid-move): each loss is a resubscribe, and a client
 * that resubscribed at once every time would send Subscribe + GetStreamingEvents in a tight loop.
 * The source and each group member count their losses since their last healthy connection (a
 * streak): the first resubscribes at once, each further one waits a growing back-off, and
 * `retry.maxAttempts` ends it with the typed error. Counted at the server.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsResponseError } from '../lib/errors.js';
import type { RetryingEvent, SourceSignal } from '../lib/sources/lifecycle.js';
import { StreamingGroup } from '../lib/sources/streaming-group.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { NO_ERROR, responseEnvelope, responseMessage, streamingEnvelope, streamingMessage } from '../lib/testing/response-writer.js';
import { until } from './helpers/until.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Every GetStreamingEvents answers ErrorSubscriptionNotFound at once: naming the ids it got (`named`), or for the whole response. */
async function losingServer(named: boolean): Promise<{ url: string; subscribes: () => number; streams: () => number }> {
  let subscribes = 0;
  let streams = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      if (body.includes('Subscribe>') && !body.includes('Unsubscribe')) {
        res.end(responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, `<m:SubscriptionId>sub-${++subscribes}</m:SubscriptionId>`)]));
      } else if (body.includes('GetStreamingEvents')) {
        streams++;
        const ids = [...body.matchAll(/SubscriptionId>([^<]+)</g)].map((m) => m[1] as string);
        const status = { code: 'ErrorSubscriptionNotFound' };
        res.end(streamingEnvelope([streamingMessage(status, named ? { errorSubscriptionIds: ids, connectionStatus: 'Closed' } : { connectionStatus: 'Closed' })]));
      } else {
        res.end(responseEnvelope('Unsubscribe', [responseMessage('UnsubscribeResponseMessage', NO_ERROR)]));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`, subscribes: () => subscribes, streams: () => streams };
}

const RETRY = { minDelayMs: 20, factor: 2, jitter: false, maxAttempts: 4 } as const;

function watch(source: { subscribe(observer: object): { unsubscribe(): void } }): { signals: SourceSignal[]; error: () => unknown; stop: () => void } {
  const signals: SourceSignal[] = [];
  let error: unknown;
  const subscription = source.subscribe({ next: (s: SourceSignal) => signals.push(s), error: (e: unknown) => (error = e) });
  return { signals, error: () => error, stop: () => subscription.unsubscribe() };
}

function delays(signals: readonly SourceSignal[]): number[] {
  return signals.filter((s): s is RetryingEvent => s.type === 'retrying').map((s) => s.delayMs);
}

describe('a server that loses every new subscription at once', () => {
  /** The two public paths onto the one engine: the signals to watch, and how to close what they run on. */
  const PATHS = {
    streamingSignals: (url: string) => ({ source: streamingSignals({ url, retry: RETRY }), close: async () => {} }),
    'StreamingGroup member': (url: string) => {
      const group = new StreamingGroup({ url, regroupDelayMs: 0, retry: RETRY });
      return { source: group.signals({ folders: ['inbox'] }), close: () => group.close() };
    },
  } as const;

  for (const named of [true, false]) {
    const what = named ? 'the error names the subscription' : 'the error is for the whole response';
    for (const [path, open] of Object.entries(PATHS)) {
      it(`${path} (${what}): one streak of losses — growing back-off, then the error after maxAttempts`, async () => {
        const server = await losingServer(named);
        const { source, close } = open(server.url);
        const run = watch(source);
        try {
          await until(() => run.error() !== undefined, 'the source gave up');
          expect(run.error()).toBeInstanceOf(EwsResponseError);
          expect((run.error() as EwsResponseError).responseCode).toBe('ErrorSubscriptionNotFound');
          // One free resubscribe, then maxAttempts − 1 back-offs: a handful of requests, not a loop.
          expect(server.subscribes()).toBeLessThanOrEqual(RETRY.maxAttempts + 1);
          expect(server.streams()).toBeLessThanOrEqual(RETRY.maxAttempts + 1);
          const waits = delays(run.signals).filter((ms) => ms > 0);
          expect(waits).toEqual([...waits].sort((x, y) => x - y));
          expect(waits.at(-1)).toBeGreaterThan(RETRY.minDelayMs);
        } finally {
          run.stop();
          await close();
        }
      });
    }
  }

  it('without maxAttempts the back-off keeps growing to maxDelayMs: requests per wait fall, they never loop', async () => {
    const server = await losingServer(true);
    const group = new StreamingGroup({ url: server.url, regroupDelayMs: 0, retry: { minDelayMs: 5, maxDelayMs: 80, factor: 2, jitter: false } });
    const run = watch(group.signals({ folders: ['inbox'] }));
    try {
      await until(() => delays(run.signals).filter((ms) => ms === 80).length >= 2, 'two waits at maxDelayMs');
      expect(run.error()).toBeUndefined();
      // 0 (free), 5, 10, 20, 40, 80, 80: one Subscribe per loss.
      expect(delays(run.signals).slice(0, 6)).toEqual([5, 10, 20, 40, 80, 80]);
      expect(server.subscribes()).toBeLessThanOrEqual(delays(run.signals).length + 2);
    } finally {
      run.stop();
      await group.close();
    }
  });
});
