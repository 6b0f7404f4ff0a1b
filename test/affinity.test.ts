/**
 * Server affinity, issue 7: against EwsSimulator in affinity mode (a call about a subscription
 * without the X-BackEndOverrideCookie its anchored Subscribe set gets ErrorSubscriptionNotFound),
 * the streaming, pull and hybrid sources Subscribe with X-AnchorMailbox + X-PreferServerAffinity,
 * keep the cookie, and send cookie + both headers on every later call — so they never trip it.
 * With `affinity: false` the same simulator does trip them (the mode is real), and the cookie
 * jar's own behaviour is checked directly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BACKEND_COOKIE, SubscriptionAffinity } from '../lib/ews/affinity.js';
import type { CookieJar } from '../lib/ews/transport.js';
import { EwsSimulator, type RecordedRequest } from '../lib/testing/index.js';
import { ready, runSource, sleep, SOURCE_KINDS, type SourceRun } from './helpers/auth-sources.js';

const SVC = { type: 'basic', username: 'svc@contoso.com', password: 'affinity-Secret-1' } as const;
const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

let sim: EwsSimulator | undefined;
const runs: SourceRun[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) r.stop();
  await sleep(20);
  await sim?.close();
  sim = undefined;
});

function start(kind: SourceRun['kind'], options: Parameters<typeof runSource>[2]): SourceRun {
  const run = runSource(kind, sim!, { auth: SVC, ...options });
  runs.push(run);
  return run;
}

function backendCookie(r: RecordedRequest): string | undefined {
  const header = r.headers['cookie'];
  const text = Array.isArray(header) ? header.join('; ') : (header as string | undefined);
  for (const part of (text ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === BACKEND_COOKIE) return rest.join('=');
  }
  return undefined;
}

const lost = (run: SourceRun): number => run.lifecycle().filter((s) => 'reason' in s && s.reason === 'subscription-lost').length;

describe('affinity mode: our sources never trip it', () => {
  it.each(SOURCE_KINDS)('%s: cookie + X-PreferServerAffinity + X-AnchorMailbox on every call after Subscribe', async (kind) => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, affinity: true });
    const run = start(kind, { mailbox: ALICE });
    await ready(run);
    for (let i = 0; i < 3; i++) {
      const { seq } = sim.deliver(ALICE, { type: 'NewMail' });
      await run.until(() => run.received.includes(seq), `event ${seq}`);
    }
    if (kind !== 'pull') sim.forceClose(); // a streaming reconnect is a later call too
    const { seq } = sim.deliver(ALICE, { type: 'NewMail' });
    await run.until(() => run.received.includes(seq), 'event after the reconnect');
    run.stop();
    await run.until(() => sim!.requests.filter((r) => r.operation === 'Unsubscribe').length === (kind === 'hybrid' ? 2 : 1), 'Unsubscribe', undefined, true);

    expect(lost(run)).toBe(0);
    expect(run.lifecycle('subscribed')).toHaveLength(1); // hybrid reports its pull subscription only
    const subscribes = sim.requests.filter((r) => r.operation === 'Subscribe');
    expect(subscribes).toHaveLength(kind === 'hybrid' ? 2 : 1);
    for (const r of sim.requests) {
      expect(r.headers['x-anchormailbox']).toBe(ALICE);
      expect(r.headers['x-preferserveraffinity']).toBe('true');
      expect(r.status).toBe(200);
    }
    const later = sim.requests.filter((r) => r.operation !== 'Subscribe');
    expect(new Set(later.map((r) => r.operation))).toEqual(
      new Set(kind === 'streaming' ? ['GetStreamingEvents', 'Unsubscribe'] : kind === 'pull' ? ['GetEvents', 'Unsubscribe'] : ['GetStreamingEvents', 'GetEvents', 'Unsubscribe']),
    );
    for (const r of later) expect(backendCookie(r)).toMatch(/^SIM-MBX0\d/);
    // The first Subscribe went without a cookie: it is what pins the subscription.
    expect(backendCookie(subscribes[0]!)).toBeUndefined();
  });

  it.each(['streaming', 'pull'] as const)('%s with affinity: false trips it (the control: the mode is enforced)', async (kind) => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, affinity: true });
    const run = start(kind, { mailbox: ALICE, affinity: false });
    await run.until(() => lost(run) >= 1, 'a lost subscription');
    expect(sim.requests.some((r) => r.headers['x-preferserveraffinity'] !== undefined)).toBe(false);
  });

  it('a lost subscription drops the old cookie: the resubscription is pinned afresh', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, affinity: true });
    const run = start('pull', { mailbox: ALICE });
    await ready(run);
    sim.inject({ type: 'forget-subscriptions' });
    await run.until(() => run.lifecycle('subscribed').length >= 2, 'the resubscription');
    const { seq } = sim.deliver(ALICE, { type: 'NewMail' });
    await run.until(() => run.received.includes(seq), 'the event');
    const subscribes = sim.requests.filter((r) => r.operation === 'Subscribe');
    expect(subscribes).toHaveLength(2);
    expect(subscribes.map(backendCookie)).toEqual([undefined, undefined]);
    const afterSecond = sim.requests.slice(sim.requests.indexOf(subscribes[1]!) + 1);
    expect(afterSecond.length).toBeGreaterThan(0);
    for (const r of afterSecond) expect(backendCookie(r)).toMatch(/^SIM-MBX0\d/);
  });

  it('a group: sources for two mailboxes anchored on the group\'s first mailbox share its server', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, affinity: true });
    const alice = start('streaming', { mailbox: ALICE, anchorMailbox: ALICE });
    const bob = start('pull', { mailbox: BOB, anchorMailbox: ALICE });
    await Promise.all([ready(alice), ready(bob)]);
    const a = sim.deliver(ALICE, { type: 'NewMail' });
    const b = sim.deliver(BOB, { type: 'NewMail' });
    await alice.until(() => alice.received.includes(a.seq), 'alice');
    await bob.until(() => bob.received.includes(b.seq), 'bob');
    expect(sim.requests.every((r) => r.headers['x-anchormailbox'] === ALICE)).toBe(true);
    expect(new Set(sim.requests.map((r) => r.mailbox))).toEqual(new Set([ALICE, BOB]));
    const cookies = new Set(sim.requests.map(backendCookie).filter((c) => c !== undefined));
    expect(cookies.size).toBe(1);
    expect(lost(alice) + lost(bob)).toBe(0);
  });
});

describe('SubscriptionAffinity (the cookie jar)', () => {
  const url = new URL('https://mail.contoso.com/EWS/Exchange.asmx');

  class Jar implements CookieJar {
    stored: string[] = [];
    constructor(private readonly header: string | undefined) {}
    cookieHeader(): string | undefined {
      return this.header;
    }
    storeSetCookie(_url: URL, setCookie: readonly string[]): void {
      this.stored.push(...setCookie);
    }
  }

  it('keeps the affinity cookie, forwards every cookie to the caller\'s jar, merges without duplicates', () => {
    const mine = new Jar('session=abc; X-BackEndOverrideCookie=stale');
    const affinity = new SubscriptionAffinity(mine);
    expect(affinity.cookieHeader(url)).toBe('session=abc; X-BackEndOverrideCookie=stale');
    affinity.storeSetCookie(url, ['X-BackEndOverrideCookie=MBX02.contoso.com~1941962753; path=/; secure; HttpOnly', 'other=1']);
    expect(affinity.backendCookie).toBe('MBX02.contoso.com~1941962753');
    expect(mine.stored).toHaveLength(2);
    expect(affinity.cookieHeader(url)).toBe('X-BackEndOverrideCookie=MBX02.contoso.com~1941962753; session=abc');
    affinity.reset();
    expect(affinity.backendCookie).toBeUndefined();
  });

  it('an expired or empty cookie withdraws the pin', () => {
    const affinity = new SubscriptionAffinity();
    affinity.storeSetCookie(url, ['x-backendoverridecookie=MBX01~1']);
    expect(affinity.cookieHeader(url)).toBe('X-BackEndOverrideCookie=MBX01~1');
    affinity.storeSetCookie(url, ['X-BackEndOverrideCookie=MBX01~1; Max-Age=0']);
    expect(affinity.cookieHeader(url)).toBeUndefined();
    affinity.storeSetCookie(url, ['X-BackEndOverrideCookie=MBX01~1']);
    affinity.storeSetCookie(url, ['X-BackEndOverrideCookie=; path=/']);
    expect(affinity.backendCookie).toBeUndefined();
  });
});
