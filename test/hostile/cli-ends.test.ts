/**
 * `ews-push-bridge forward` tells the truth about how it ends, against servers that answer badly:
 * the CLI in a child process, EwsSimulator or a scripted server and a capture listener in this one.
 *
 * - a listener that stays down ends the bridge with exit 1 (not 0 and "every listener answered
 *   Unsubscribe"), and `/healthz` turns 503 with the reason in its JSON body meanwhile;
 * - a URL answering HTTP 200 with XML that is not EWS exits 4 with the URL hint;
 * - one log line per retry, and no doorbell warnings in front of a fatal authentication exit.
 *
 * Waits are on the child's output, the servers' request counts and exit; the long timeouts fit a
 * loaded two-core machine (the listener retry alone is Exchange's fixed 30 s).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsSimulator } from '../../lib/testing/index.js';
import { startCaptureListener, type CaptureListener } from '../helpers/capture-listener.js';
import { killAll, spawnCli, type CliChild } from '../helpers/cli-process.js';

const USER = 'svc-bridge@contoso.com';
const PASSWORD = 'cli-ends-Pa55word';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ews-cli-ends-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ users: { [USER]: PASSWORD } });
  cleanups.push(() => sim.close());
  return sim;
}

async function listener(answer: Parameters<typeof startCaptureListener>[0]): Promise<CaptureListener> {
  const l = await startCaptureListener(answer);
  cleanups.push(() => l.close());
  return l;
}

/** A server that answers every request with HTTP 200 and `body`, and counts the requests. */
async function scriptedServer(body: string): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (socket) => cleanups.push(() => void socket.destroy()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/EWS/Exchange.asmx`, requests: () => requests };
}

/** Polls `/healthz` until `accept` takes the answer; fails if the child exits first. */
async function healthUntil(child: CliChild, url: string, accept: (status: number, body: unknown) => boolean): Promise<{ status: number; body: unknown }> {
  let exited = false;
  void child.exited(600_000).then(
    () => (exited = true),
    () => undefined,
  );
  for (;;) {
    if (exited) throw new Error(`the CLI exited before /healthz gave the awaited answer\n--- stderr\n${child.stderr()}`);
    try {
      const response = await fetch(`${url}/healthz`);
      const body: unknown = await response.json();
      if (accept(response.status, body)) return { status: response.status, body };
    } catch {
      // The child may be stopping; the exit check above decides.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface HealthBody {
  status: string;
  reasons: { mailbox: string; reason: string; forMs: number; code?: string; message: string }[];
  mailboxes: { mailbox: string; state: string; listenerFailingForMs?: number }[];
}

/** Answers of HTTP 200 that are XML but not the EWS answer asked for. */
const NOT_EWS: readonly (readonly [string, string])[] = [
  ['a SOAP envelope of another service', '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Hello xmlns="urn:other">hi</Hello></s:Body></s:Envelope>'],
  ['an empty SOAP response', '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:SubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages/></m:SubscribeResponse></s:Body></s:Envelope>'],
  ['an RSS feed', '<?xml version="1.0"?><rss version="2.0"><channel><title>news</title></channel></rss>'],
];

describe('forward ends truthfully', () => {
  it('exits 1 when the listener stays down past the retry schedule, and /healthz says 503 with the reason meanwhile', { timeout: 180_000 }, async () => {
    const sim = await simulator();
    const l = await listener({ answer: () => ({ status: 503, body: 'listener down' }) });
    const file = writeConfig({
      ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
      mode: 'streaming',
      // Exchange's schedule: a retry after 30 s, then the next (60 s later) would pass 1 minute.
      listener: { url: l.url, statusFrequencyMinutes: 1 },
      metrics: { port: 0, unhealthyAfterSeconds: 1 },
    });
    const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: PASSWORD });
    const [, metricsUrl] = await child.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/, 60_000);
    await child.waitFor(/all subscriptions connected/, 60_000);
    const healthy = await healthUntil(child, metricsUrl!, () => true);
    expect(healthy.status).toBe(200);
    expect(healthy.body).toMatchObject({ status: 'ok' });

    sim.deliver(USER, { type: 'NewMail' });
    await child.waitFor(/the listener did not take a notification; retrying/, 60_000);
    expect(l.posts.length).toBeGreaterThanOrEqual(1);
    const down = await healthUntil(child, metricsUrl!, (status) => status === 503);
    const body = down.body as HealthBody;
    expect(body.status).toBe('unhealthy');
    expect(body.reasons).toEqual([
      expect.objectContaining({ mailbox: '', reason: 'listener-failing', code: 'EWS_HTTP_ERROR', message: expect.stringMatching(/posts to the listener have been failing for \d+ s/) }),
    ]);
    expect(body.reasons[0]!.forMs).toBeGreaterThan(1000);
    expect(body.mailboxes[0]!.listenerFailingForMs).toBeGreaterThan(1000);
    expect(body.mailboxes).toMatchObject([{ mailbox: '', state: 'connected' }]);

    expect(await child.exited(120_000)).toBe(1);
    // The post and its one retry, 30 s later; then the bridge gave up as Exchange would.
    expect(l.posts.length).toBeGreaterThanOrEqual(2);
    expect(child.stderr()).not.toContain('every listener answered Unsubscribe');
    expect(child.stderr()).toMatch(/ews-push-bridge: The push handler failed 2 times/);
    expect(child.stderr()).toMatch(/stopping: closing subscriptions[\s\S]*stopped/);
  });

  it('exits 1 when a listener that stays down overflows listener.maxBacklogNotifications', { timeout: 120_000 }, async () => {
    const sim = await simulator();
    const l = await listener({ answer: () => ({ status: 503, body: 'listener down' }) });
    const file = writeConfig({
      ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
      mode: 'streaming',
      listener: { url: l.url, statusFrequencyMinutes: 30, maxBacklogNotifications: 1 },
    });
    const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: PASSWORD });
    await child.waitFor(/all subscriptions connected/, 60_000);
    sim.deliver(USER, { type: 'NewMail' });
    await child.waitFor(/the listener did not take a notification; retrying/, 60_000);
    // One more notification while the first is held for its retry: the backlog bound is reached.
    sim.deliver(USER, { type: 'NewMail' });
    expect(await child.exited(60_000)).toBe(1);
    expect(l.posts).toHaveLength(1);
    expect(child.stderr()).not.toContain('every listener answered Unsubscribe');
    expect(child.stderr()).toMatch(/ews-push-bridge: The push handler fell behind by maxBacklogNotifications \(1\)/);
  });

  it.each(['pull', 'streaming'] as const)('%s: exits 4 with the URL hint when the server answers 200 with XML that is not EWS', { timeout: 120_000 }, async (mode) => {
    const l = await listener({});
    const runs = await Promise.all(
      NOT_EWS.map(async ([what, body]) => {
        const server = await scriptedServer(body);
        const file = writeConfig({ ews: { url: server.url, auth: { type: 'none' }, startupTimeoutSeconds: 2 }, mode, listener: { url: l.url } });
        const child = spawnCli(['forward', '--config', file]);
        return { what, server, child, code: await child.exited(90_000) };
      }),
    );
    for (const { what, server, child, code } of runs) {
      // An EWS-shaped answer without a SubscriptionId reads as a broken endpoint ("check the URL");
      // anything else as not EWS at all (the URL hint).
      expect({ what, code, stderr: child.stderr() }).toEqual({
        what,
        code: 4,
        stderr: expect.stringMatching(
          new RegExp(`(The server at ${server.url} did not answer as EWS: .*The URL should end in /EWS/Exchange\\.asmx|Cannot reach the EWS server at ${server.url}: .*Check the URL)`),
        ) as unknown,
      });
      expect(server.requests()).toBeGreaterThanOrEqual(1);
    }
    expect(l.posts).toEqual([]);
  });
});

describe('forward logs once', () => {
  it('writes one line per retry, numbered by attempt', { timeout: 120_000 }, async () => {
    const l = await listener({});
    const server = await scriptedServer(NOT_EWS[0]![1]);
    const file = writeConfig({ ews: { url: server.url, auth: { type: 'none' }, startupTimeoutSeconds: 4 }, mode: 'pull', listener: { url: l.url } });
    const child = spawnCli(['forward', '--config', file]);
    await child.exited(90_000);
    const retryLines = child
      .stderr()
      .split('\n')
      .filter((line) => /retrying/.test(line));
    expect(retryLines.length, child.stderr()).toBeGreaterThanOrEqual(1);
    // Exactly one line for attempt 1, one for attempt 2 … (not an INFO and a WARN for each).
    const attempts = retryLines.map((line) => /\battempt=(\d+)/.exec(line)?.[1]);
    expect(attempts).toEqual(retryLines.map((_, i) => String(i + 1)));
    // Every failed request but the last (cut short by the start-up timeout) announced its retry.
    expect(retryLines.length).toBeGreaterThanOrEqual(server.requests() - 1);
    expect(retryLines.length).toBeLessThanOrEqual(server.requests());
  });

  it.each([
    ['one mailbox', undefined],
    ['two mailboxes on a shared doorbell connection', ['alice@contoso.com', 'bob@contoso.com']],
  ] as const)('hybrid, %s: a refused credential exits 3 without doorbell warnings in front', { timeout: 120_000 }, async (_what, mailboxes) => {
    const sim = await simulator();
    const l = await listener({});
    const file = writeConfig({
      ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
      mode: 'hybrid',
      ...(mailboxes === undefined ? {} : { mailboxes }),
      listener: { url: l.url },
    });
    const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: 'wrong-password-123' });
    expect(await child.exited(90_000)).toBe(3);
    const stderr = child.stderr();
    expect(stderr).toContain(`Cannot authenticate to ${sim.url}`);
    expect(stderr).not.toMatch(/doorbell/i);
    expect(stderr).not.toContain('wrong-password-123');
    // The refusal is said once as a warning-or-worse line per mailbox at most, then the exit message.
    expect(stderr.split('\n').filter((line) => / (WARN|ERROR) /.test(line) && /EwsAuthError|EWS_AUTH_FAILED/.test(line)).length).toBeLessThanOrEqual(mailboxes?.length ?? 1);
  });
});
