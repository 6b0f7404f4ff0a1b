/**
 * event-emitter adapter: typed events in wire order, keep-alives, a throwing listener as a failed
 * push post (redelivered on the schedule), `'error'` without a listener not crashing the host,
 * async listener rejections, gaps and lifecycle, close, and end to end against EwsSimulator.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pushEvents, type PushEventsEnd } from '../adapters/event-emitter.js';
import type { ErrorContext } from '../adapters/push-callback.js';
import { EwsListenerError } from '../lib/errors.js';
import type { NotificationEvent } from '../lib/model.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { flush, manualSource, newMail, notification } from './helpers/adapter-sources.js';
import { until } from './helpers/until.js';

const at = new Date('2024-05-01T10:00:00Z');
const parent = { id: 'inbox-id' };
const EVENTS: NotificationEvent[] = [
  newMail(),
  { type: 'Created', timeStamp: '2024-05-01T10:20:31Z', folderId: { id: 'f1' }, parentFolderId: parent },
  { type: 'Modified', timeStamp: '2024-05-01T10:20:32Z', folderId: { id: 'f1' }, parentFolderId: parent, unreadCount: 4 },
  { type: 'Moved', timeStamp: '2024-05-01T10:20:33Z', itemId: { id: 'i2' }, parentFolderId: { id: 'archive' }, oldItemId: { id: 'i1' }, oldParentFolderId: parent },
  { type: 'Copied', timeStamp: '2024-05-01T10:20:34Z', itemId: { id: 'i3' }, parentFolderId: parent, oldItemId: { id: 'i2' }, oldParentFolderId: { id: 'archive' } },
  { type: 'FreeBusyChanged', timeStamp: '2024-05-01T10:20:35Z', itemId: { id: 'i4' }, parentFolderId: { id: 'calendar' } },
  { type: 'Deleted', timeStamp: '2024-05-01T10:20:36Z', itemId: { id: 'i3' }, parentFolderId: parent },
];
const NAMES = ['newMail', 'created', 'modified', 'moved', 'copied', 'freeBusyChanged', 'deleted', 'status', 'notification'] as const;

function recordAll(emitter: ReturnType<typeof pushEvents>): string[] {
  const log: string[] = [];
  for (const name of NAMES) emitter.on(name, (...args: unknown[]) => void log.push(`${name}${name === 'notification' ? '' : ` ${JSON.stringify(args[0])}`}`));
  return log;
}

describe('pushEvents with fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: at });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('emits one typed event per wire event, in order, after the whole notification', async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source);
    const seen: string[] = [];
    emitter.on('notification', (n, context) => void seen.push(`notification ${n.events.length} attempt ${context.attempt}`));
    emitter.on('newMail', (e, n) => void seen.push(`newMail ${e.itemId?.id} of ${n.subscriptionId}`));
    emitter.on('created', (e) => void seen.push(`created folder ${e.folderId?.id}`));
    emitter.on('modified', (e) => void seen.push(`modified unread ${e.unreadCount}`));
    emitter.on('moved', (e) => void seen.push(`moved ${e.oldItemId?.id}->${e.itemId?.id}`));
    emitter.on('copied', (e) => void seen.push(`copied ${e.oldItemId?.id}->${e.itemId?.id}`));
    emitter.on('freeBusyChanged', (e) => void seen.push(`freeBusyChanged ${e.parentFolderId.id}`));
    emitter.on('deleted', (e) => void seen.push(`deleted ${e.itemId?.id}`));
    await flush();
    src.notify(notification('sub-1', EVENTS));
    await flush();
    const first = EVENTS[0]!;
    expect(seen).toEqual([
      'notification 7 attempt 1',
      `newMail ${first.type === 'NewMail' ? first.itemId?.id : ''} of sub-1`,
      'created folder f1',
      'modified unread 4',
      'moved i1->i2',
      'copied i2->i3',
      'freeBusyChanged calendar',
      'deleted i3',
    ]);
    await emitter.close();
  });

  it("emits 'status' for the keep-alive after statusFrequencyMinutes of idleness", async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source, { statusFrequencyMinutes: 3 });
    const statuses: unknown[] = [];
    emitter.on('status', (event, n, context) => void statuses.push({ event, id: n.subscriptionId, synthesized: context.synthesized }));
    await flush();
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(statuses).toEqual([{ event: { type: 'Status' }, id: 'sub-1', synthesized: true }]);
    await emitter.close();
  });

  it('a throwing listener is a failed post: reported, and the whole notification emitted again on the schedule; acknowledged only then', async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source);
    const log = recordAll(emitter);
    let fail = true;
    emitter.on('moved', () => {
      if (fail) throw new Error('crm is down');
    });
    const errors: { error: unknown; context: ErrorContext }[] = [];
    emitter.on('error', (error, context) => void errors.push({ error, context }));
    await flush();
    const handle = src.notifyWithAck(notification('sub-1', EVENTS.slice(0, 4)));
    await flush();
    expect(errors).toHaveLength(1);
    expect((errors[0]!.error as Error).message).toBe('crm is down');
    expect(errors[0]!.context).toMatchObject({ phase: 'handler', fatal: false, retryInMs: 30_000, attempt: 1 });
    expect(handle.acked).toBe(false);
    fail = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(handle.acked).toBe(true);
    // Emitted twice: the second time completely.
    expect(log.filter((l) => l.startsWith('newMail'))).toHaveLength(2);
    expect(log.filter((l) => l.startsWith('moved'))).toHaveLength(2);
    await emitter.close();
  });

  it("'error' without a listener does not crash: it goes to the logger; giving up ends with 'end' and a rejected done", async () => {
    const src = manualSource();
    const lines: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (m: string, f?: object) => void lines.push(`${m} ${JSON.stringify(f)}`) };
    const emitter = pushEvents(src.source, { statusFrequencyMinutes: 1, logger });
    emitter.on('newMail', () => {
      throw new Error('listener bug');
    });
    const ends: PushEventsEnd[] = [];
    emitter.on('end', (end) => void ends.push(end));
    await flush();
    src.notify(notification('sub-1'));
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^event-emitter adapter error \(no error listener\) .*"fatal":false.*listener bug/);
    expect(lines[1]).toMatch(/"fatal":true.*EwsListenerError/);
    await expect(emitter.done).rejects.toBeInstanceOf(EwsListenerError);
    expect(ends).toHaveLength(1);
    expect(ends[0]!.reason).toBe('failed');
    expect(src.subscribed()).toBe(false);
    expect(emitter.closed).toBe(true);
  });

  it("an async listener's rejection becomes 'error' (no unhandled rejection) and causes no redelivery", async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source);
    const errors: unknown[] = [];
    emitter.on('error', (error) => void errors.push(error));
    let calls = 0;
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- an async listener is what this test is about
    emitter.on('newMail', async () => {
      calls++;
      await Promise.resolve();
      throw new Error('async listener failed');
    });
    await flush();
    const handle = src.notifyWithAck(notification('sub-1'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(errors.map((e) => (e as Error).message)).toEqual(['async listener failed']);
    expect(calls).toBe(1);
    expect(handle.acked).toBe(true);
    await emitter.close();
  });

  it("emits 'gap' in order with the events and 'lifecycle' for every signal; close() ends with reason closed", async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source);
    const log: string[] = [];
    emitter.on('lifecycle', (e) => void log.push(`lifecycle ${e.type}`));
    emitter.on('gap', (g) => void log.push(`gap ${g.reason}`));
    emitter.on('newMail', () => void log.push('newMail'));
    const ends: PushEventsEnd[] = [];
    emitter.on('end', (end) => void ends.push(end));
    await flush();
    src.emit({ type: 'subscribed', subscriptionId: 'sub-1', at });
    src.notify(notification('sub-1'));
    src.emit({ type: 'gap', subscriptionId: 'sub-1', reason: 'heartbeat-timeout', from: at, to: at, subscriptionKept: true, eventsMayBeLost: true });
    src.notify(notification('sub-1'));
    await flush();
    expect(log).toEqual(['lifecycle subscribed', 'lifecycle gap', 'newMail', 'gap heartbeat-timeout', 'newMail']);
    await emitter.close();
    expect(ends).toEqual([{ reason: 'closed' }]);
    await expect(emitter.done).resolves.toEqual({ reason: 'closed' });
    expect(src.subscribed()).toBe(false);
  });

  it('close() right after creation never subscribes for long, and listeners added in the same tick see everything', async () => {
    const src = manualSource();
    const emitter = pushEvents(src.source);
    expect(src.subscribed()).toBe(false);
    await emitter.close();
    expect(src.subscribed()).toBe(false);
    await expect(emitter.done).resolves.toEqual({ reason: 'closed' });
  });

  it('names the bad option at once', () => {
    const src = manualSource();
    expect(() => pushEvents(src.source, { statusFrequencyMinutes: 0 })).toThrow(/statusFrequencyMinutes must be 1–1440/);
    expect(() => pushEvents(null as never)).toThrow(/source must be an Observable/);
  });
});

describe('pushEvents against EwsSimulator', () => {
  it('every delivered event arrives as its typed event', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
    const mailbox = 'alice@contoso.com';
    const emitter = pushEvents(streamingSignals({ url: sim.url, auth: { type: 'basic', username: mailbox, password: 'x' }, subscribeToAllFolders: true }));
    const got: [string, number | undefined][] = [];
    for (const name of ['newMail', 'created', 'modified', 'moved', 'deleted'] as const) {
      emitter.on(name, (event: NotificationEvent) => void got.push([name, sequenceOf(event)]));
    }
    try {
      await until(() => sim.subscriptions.some((s) => s.connected), 'a connection');
      const delivered = [
        ['newMail', sim.deliver(mailbox, { type: 'NewMail' }).seq],
        ['created', sim.deliver(mailbox, { type: 'Created', folder: 'calendar' }).seq],
        ['modified', sim.deliver(mailbox, { type: 'Modified' }).seq],
        ['moved', sim.deliver(mailbox, { type: 'Moved', from: 'inbox', to: 'archive' }).seq],
        ['deleted', sim.deliver(mailbox, { type: 'Deleted', folder: 'archive' }).seq],
      ];
      await until(() => got.length >= delivered.length, 'every event', { describe: () => `only got ${JSON.stringify(got)}` });
      expect(got).toEqual(delivered);
    } finally {
      await emitter.close();
      await sim.close();
    }
  });
});
