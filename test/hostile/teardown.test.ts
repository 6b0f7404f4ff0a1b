/**
 * Hostile servers, part 2: truthful ends. `close()`, `done` and `sourceClosed()` promise that the
 * EWS subscription is gone. Against a server that answers Unsubscribe slowly, or never, they must
 * resolve only after the answer came — or after `unsubscribeTimeoutMs`, never hang.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { pushCallback } from '../../adapters/push-callback.js';
import { StreamingGroup, hybridSignals, pullSignals, sourceClosed, streamingNotifications, streamingSignals } from '../../lib/index.js';
import { connectionStatusEnvelope, subscribeResponse } from '../fixtures/ews-wire.js';
import { answerXml, pullSubscribeResponse, startScriptedExchange, statusOnlyGetEventsResponse, type ScriptedExchange } from '../helpers/scripted-exchange.js';
import { until } from '../helpers/until.js';

const AUTH = { type: 'basic', username: 'svc', password: 'not-a-secret' } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const UNSUBSCRIBE_OK =
  '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
  '<m:UnsubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages>' +
  '<m:UnsubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:UnsubscribeResponseMessage>' +
  '</m:ResponseMessages></m:UnsubscribeResponse></s:Body></s:Envelope>';

/** A streaming server whose Unsubscribe answer waits until `release()`; records when it was answered. */
async function slowUnsubscribeServer(): Promise<{ server: ScriptedExchange; answered: () => boolean; release: () => void; received: () => number }> {
  const held: ServerResponse[] = [];
  let answered = false;
  let released = false;
  let n = 0;
  const server = await startScriptedExchange({
    Subscribe: (res, request) => answerXml(res, request.body.includes('PullSubscriptionRequest') ? pullSubscribeResponse(`pull-${n++}`, 'wm-0') : subscribeResponse(`sub-${n++}`)),
    GetStreamingEvents: (res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.write(connectionStatusEnvelope('OK'));
    },
    GetEvents: (res) => answerXml(res, statusOnlyGetEventsResponse('pull-0', 'wm-0', 'wm-0', false)),
    Unsubscribe: (res) => {
      if (released) {
        answered = true;
        answerXml(res, UNSUBSCRIBE_OK);
      } else held.push(res);
    },
  });
  return {
    server,
    answered: () => answered,
    received: () => server.count('Unsubscribe'),
    release: () => {
      released = true;
      for (const res of held.splice(0)) {
        answered = true;
        answerXml(res, UNSUBSCRIBE_OK);
      }
    },
  };
}

describe('teardown that promises Unsubscribe waits for it', () => {
  it('push-callback: close() and done resolve only after EWS answered Unsubscribe', async () => {
    const s = await slowUnsubscribeServer();
    try {
      const source = streamingSignals({ url: s.server.url, auth: AUTH });
      const bridge = pushCallback(source, () => 'OK');
      await until(() => s.server.count('GetStreamingEvents') > 0, "s.server.count('GetStreamingEvents') > 0");
      let closed = false;
      let done = false;
      void bridge.close().then(() => (closed = true));
      void bridge.done.then(() => (done = true));
      await until(() => s.received() === 1, 's.received() === 1');
      // The Unsubscribe is out but unanswered: neither may have resolved.
      await sleep(100);
      expect([closed, done]).toEqual([false, false]);
      s.release();
      await until(() => closed && done, 'closed && done');
      expect(s.answered()).toBe(true);
    } finally {
      await s.server.close();
    }
  });

  it('sourceClosed() waits for the Unsubscribe of streaming, pull, hybrid and group sources, and is bounded by unsubscribeTimeoutMs', async () => {
    const s = await slowUnsubscribeServer();
    try {
      const group = new StreamingGroup({ url: s.server.url, auth: AUTH, regroupDelayMs: 1 });
      const subscriptions = [
        streamingNotifications({ url: s.server.url, auth: AUTH }).subscribe(() => {}),
        pullSignals({ url: s.server.url, auth: AUTH, pollIntervalMs: 60_000 }).subscribe(() => {}),
        hybridSignals({ url: s.server.url, auth: AUTH, pollIntervalMs: 60_000 }).subscribe(() => {}),
        group.signals({}).subscribe(() => {}),
      ];
      // Each one has subscribed (the hybrid source twice: pull and doorbell).
      await until(() => s.server.count('Subscribe') === 5, "s.server.count('Subscribe') === 5");
      let settled = 0;
      for (const subscription of subscriptions) {
        subscription.unsubscribe();
        void sourceClosed(subscription).then(() => settled++);
      }
      await until(() => s.received() === 5, 's.received() === 5');
      await sleep(100);
      expect(settled).toBe(0);
      s.release();
      await until(() => settled === 4, 'settled === 4');
      await group.close();

      // A server that never answers: bounded by unsubscribeTimeoutMs, never a hang.
      const silent = await startScriptedExchange({
        Subscribe: (res) => answerXml(res, subscribeResponse('sub-silent')),
        GetStreamingEvents: (res) => {
          res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
          res.write(connectionStatusEnvelope('OK'));
        },
        Unsubscribe: () => {},
      });
      try {
        const subscription = streamingSignals({ url: silent.url, auth: AUTH, unsubscribeTimeoutMs: 200 }).subscribe(() => {});
        await until(() => silent.count('GetStreamingEvents') > 0, "silent.count('GetStreamingEvents') > 0");
        subscription.unsubscribe();
        await sourceClosed(subscription);
        expect(silent.count('Unsubscribe')).toBe(1);
      } finally {
        await silent.close();
      }
      // Foreign subscriptions have nothing to wait for.
      await expect(sourceClosed({ unsubscribe() {} })).resolves.toBeUndefined();
      await expect(sourceClosed(undefined)).resolves.toBeUndefined();
    } finally {
      s.release();
      await s.server.close();
    }
  });
});
