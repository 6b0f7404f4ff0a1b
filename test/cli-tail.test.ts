/**
 * `ews-push-bridge tail`: JSON lines for `jq` off a terminal (one notification per line, as the
 * model has it), a readable line per event on one, credentials from the environment only, and
 * the exit codes a person can act on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { eventLine } from '../cli/tail.js';
import type { PushNotification } from '../lib/model.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { killAll, runCli, spawnCli } from './helpers/cli-process.js';

const USER = 'svc-tail@contoso.com';
const PASSWORD = 'tail-test-Pa55word';
const ALICE = 'alice@contoso.com';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ users: { [USER]: PASSWORD } });
  cleanups.push(() => sim.close());
  return sim;
}

describe('ews-push-bridge tail', () => {
  it.each(['streaming', 'pull'] as const)('%s: prints JSON lines off a terminal, stops after --limit and unsubscribes', async (mode) => {
    const sim = await simulator();
    const child = spawnCli(['tail', '--url', sim.url, '--mailbox', ALICE, '--mode', mode, '--limit', '3', '--poll-interval', '1'], {
      EWS_USERNAME: USER,
      EWS_PASSWORD: PASSWORD,
    });
    await child.waitFor(/INFO {2}connected/);
    const delivered = [sim.deliver(ALICE, { type: 'NewMail' }), sim.deliver(ALICE, { type: 'Created', folder: 'inbox' }), sim.deliver(ALICE, { type: 'Deleted', folder: 'inbox' })];
    expect(await child.exited()).toBe(0);
    const lines = child.stdout().trim().split('\n');
    const notifications = lines.map((line) => JSON.parse(line) as PushNotification & { receivedAt: string });
    for (const n of notifications) {
      expect(n.mailbox).toBe(ALICE);
      expect(Number.isNaN(Date.parse(n.receivedAt))).toBe(false);
      expect(typeof n.subscriptionId).toBe('string');
    }
    const events = notifications.flatMap((n) => n.events);
    expect(events.map((e) => e.type)).toEqual(['NewMail', 'Created', 'Deleted']);
    expect(events.map((e) => sequenceOf(e))).toEqual(delivered.map((d) => d.seq));
    // Pull events carry their watermark; streaming ones have none (nothing invented).
    expect(events.every((e) => (mode === 'pull' ? e.watermark !== undefined : e.watermark === undefined))).toBe(true);
    expect(sim.requests.filter((r) => r.operation === 'Unsubscribe').map((r) => r.status)).toEqual([200]);
    expect(sim.subscriptions).toEqual([]);
    expect(child.stderr() + child.stdout()).not.toContain(PASSWORD);
  });

  it('stops cleanly on SIGINT', async () => {
    const sim = await simulator();
    const child = spawnCli(['tail', '--url', sim.url], { EWS_USERNAME: USER, EWS_PASSWORD: PASSWORD });
    await child.waitFor(/INFO {2}connected/);
    child.process.kill('SIGINT');
    expect(await child.exited()).toBe(0);
    expect(sim.subscriptions).toEqual([]);
    expect(child.stdout()).toBe('');
  });

  it('exits 3 for refused credentials, 4 for an unreachable server, 2 for missing ones', async () => {
    const sim = await simulator();
    const refused = await runCli(['tail', '--url', sim.url], { EWS_USERNAME: USER, EWS_PASSWORD: 'not-the-password' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`Cannot authenticate to ${sim.url}`);
    expect(refused.stderr).not.toContain('not-the-password');

    const url = new URL(sim.url);
    await sim.close();
    const unreachable = await runCli(['tail', '--url', url.href, '--connect-timeout', '1'], { EWS_USERNAME: USER, EWS_PASSWORD: PASSWORD });
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain(`Cannot reach the EWS server at ${url.origin}${url.pathname}`);

    const noPassword = await runCli(['tail', '--url', url.href, '--username', USER], { EWS_PASSWORD: '' });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('--auth basic needs the password in EWS_PASSWORD or --password-file');
    const noUrl = await runCli(['tail'], { EWS_URL: '' });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain('--url is required (or set EWS_URL)');
  });

  it('a readable line per event for a terminal', () => {
    const at = new Date('2026-03-01T10:20:30.456Z');
    const n: PushNotification = {
      subscriptionId: 's1',
      moreEvents: false,
      mailbox: ALICE,
      events: [
        { type: 'NewMail', timeStamp: '2026-03-01T10:20:30Z', itemId: { id: 'AAMkADk2ZTVhM2Y4LTI1NjctNDQ0Mi1iNGUwLWFkNTdkZmU3ZjE0ZQBGAAAAAAA' }, parentFolderId: { id: 'inbox-id' } },
        { type: 'Status' },
      ],
    };
    expect(eventLine(n.events[0]!, n, at)).toBe('10:20:30.456  NewMail         alice@contoso.com  item …NTdkZmU3ZjE0ZQBGAAAAAAA');
    expect(eventLine(n.events[1]!, n, at)).toBe('10:20:30.456  Status          alice@contoso.com');
  });
});
