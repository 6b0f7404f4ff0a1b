/**
 * Bearer tokens, issue 7: a token function is called again once on a 401 (an expired token is
 * refreshed inside the failing call, without a back-off round or a lifecycle disconnect), on a
 * streaming reconnect as on any call; an application token reaches the mailbox through
 * impersonation (ExchangeImpersonation + X-AnchorMailbox on every call).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EwsAuthError } from '../lib/errors.js';
import type { BearerAuth } from '../lib/ews/auth-header.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { postSoap } from '../lib/ews/transport.js';
import { EwsSimulator, type RecordedRequest } from '../lib/testing/index.js';
import { ready, runSource, SOURCE_KINDS, type SourceRun, stopRun } from './helpers/auth-sources.js';

const MAILBOX = 'alice@contoso.com';

/** A token issuer whose current token is the only valid one; `rotate()` expires it. */
class Issuer {
  private generation = 1;
  calls = 0;
  readonly auth: BearerAuth = {
    type: 'bearer',
    token: () => {
      this.calls++;
      return Promise.resolve(this.current);
    },
  };
  get current(): string {
    return `access-token-gen-${this.generation}`;
  }
  rotate(): void {
    this.generation++;
  }
}

let sim: EwsSimulator | undefined;
let run: SourceRun | undefined;
afterEach(async () => {
  await stopRun(run, sim);
  run = undefined;
  sim = undefined;
});

function statuses(requests: readonly RecordedRequest[], operation: string): (number | undefined)[] {
  return requests.filter((r) => r.operation === operation || (r.status === 401 && r.body.includes(`<m:${operation}`))).map((r) => r.status);
}

describe('bearer token refresh', () => {
  it('streaming: a 401 on reconnect calls the token function again, once, and the same attempt goes on', async () => {
    const issuer = new Issuer();
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, authSchemes: ['Bearer'], verifyToken: (t) => (t === issuer.current ? MAILBOX : false) });
    run = runSource('streaming', sim, { auth: issuer.auth });
    await ready(run);
    const first = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(first.seq), 'first event');
    expect(issuer.calls).toBe(1);

    issuer.rotate(); // the cached token has expired server-side
    sim.forceClose();
    await run.until(() => run!.lifecycle('connected').length >= 2, 'the reconnect');
    const second = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(second.seq), 'second event');

    expect(issuer.calls).toBe(2);
    expect(statuses(sim.requests, 'GetStreamingEvents')).toEqual([200, 401, 200]);
    // The refresh happened inside the call: no retry round, no error surfaced.
    expect(run.lifecycle('retrying')).toEqual([]);
  });

  it('pull: an expired token between polls is refreshed inside the GetEvents call', async () => {
    const issuer = new Issuer();
    sim = await EwsSimulator.start({ timeScale: 0.001, authSchemes: ['Bearer'], verifyToken: (t) => (t === issuer.current ? MAILBOX : false) });
    run = runSource('pull', sim, { auth: issuer.auth });
    await ready(run);
    issuer.rotate();
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    expect(issuer.calls).toBe(2);
    const getEvents = statuses(sim.requests, 'GetEvents');
    expect(getEvents.filter((s) => s === 401)).toHaveLength(1);
    expect(run.lifecycle('retrying')).toEqual([]);
  });

  it('hybrid: doorbell and poll share the token; an expiry costs at most one refresh per call that hit it', async () => {
    const issuer = new Issuer();
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, authSchemes: ['Bearer'], verifyToken: (t) => (t === issuer.current ? MAILBOX : false) });
    run = runSource('hybrid', sim, { auth: issuer.auth, pollIntervalMs: 200 });
    await ready(run);
    await run.until(() => sim!.openStreamingConnections === 1, 'the doorbell');
    expect(issuer.calls).toBe(1);
    issuer.rotate();
    sim.forceClose();
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    await run.until(() => sim!.openStreamingConnections === 1, 'the doorbell back');
    const refused = sim.requests.filter((r) => r.status === 401).length;
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(issuer.calls - 1).toBeLessThanOrEqual(refused);
    expect(run.error).toBeUndefined();
  });

  it('a token the server keeps refusing: two calls of the function, two requests, a non-retriable EwsAuthError', async () => {
    let calls = 0;
    sim = await EwsSimulator.start({ authSchemes: ['Bearer'], verifyToken: () => false });
    const request = {
      soapAction: SOAP_ACTIONS.Subscribe,
      envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
    };
    const error = await postSoap(request, { url: sim.url, auth: { type: 'bearer', token: () => Promise.resolve(`t${++calls}`) } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect(error).toMatchObject({ retriable: false, status: 401 });
    expect(calls).toBe(2);
    expect(sim.requests).toHaveLength(2);
  });
});

describe('application token + impersonation', () => {
  it.each(SOURCE_KINDS)('%s: every call carries ExchangeImpersonation and X-AnchorMailbox for the watched mailbox', async (kind) => {
    sim = await EwsSimulator.start({
      timeScale: 0.001,
      keepAliveIntervalMs: 200,
      authSchemes: ['Bearer'],
      verifyToken: (t) => t === 'app-token', // true: an application token, no mailbox of its own
      impersonation: { app: [MAILBOX] },
    });
    run = runSource(kind, sim, { auth: { type: 'bearer', token: 'app-token' }, mailbox: MAILBOX });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    expect(run.notifications.filter((n) => n.events.some((e) => e.type !== 'Status')).every((n) => n.mailbox === MAILBOX)).toBe(true);
    run.stop();
    await run.until(() => sim!.requests.some((r) => r.operation === 'Unsubscribe'), 'the Unsubscribe', undefined, true);
    for (const r of sim.requests) {
      expect(r.headers['x-anchormailbox']).toBe(MAILBOX);
      expect(r.request?.header.impersonation?.value).toBe(MAILBOX);
      expect(r).toMatchObject({ user: 'app', mailbox: MAILBOX, status: 200 });
    }
    expect(new Set(sim.requests.map((r) => r.operation))).toEqual(
      new Set(kind === 'streaming' ? ['Subscribe', 'GetStreamingEvents', 'Unsubscribe'] : kind === 'pull' ? ['Subscribe', 'GetEvents', 'Unsubscribe'] : ['Subscribe', 'GetStreamingEvents', 'GetEvents', 'Unsubscribe']),
    );
  });
});
