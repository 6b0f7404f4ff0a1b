/**
 * `forward` in hybrid mode counts the streaming doorbell's reconnects: the CLI in a child process,
 * EwsSimulator and a legacy listener in this one; a GetStreamingEvents cut by a simulator fault
 * shows up in `ews_bridge_doorbell_reconnects_total` (and the doorbell gauge comes back to 1),
 * while the pull side's `ews_bridge_reconnects_total` stays at 0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { startCaptureListener, type CaptureListener } from './helpers/capture-listener.js';
import { killAll, spawnCli } from './helpers/cli-process.js';
import { until } from './helpers/until.js';

/** until() every 20 ms: the predicates scrape the CLI's metrics over HTTP. */
const SCRAPE_POLL = { intervalMs: 20 };

const USER = 'alice@contoso.com';
const PASSWORD = 'doorbell-test-Pa55word';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The value of one sample (`name{labels}`) in a Prometheus text exposition, if present. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function receivedSeqs(l: CaptureListener): number[] {
  const seqs: number[] = [];
  for (const post of l.posts) {
    const body = parseEnvelope(post.body).body;
    if (body.type !== 'response') continue;
    for (const message of body.messages) {
      if (message.kind !== 'SendNotification' || !message.notification) continue;
      for (const event of message.notification.events) {
        const seq = sequenceOf(event);
        if (seq !== undefined) seqs.push(seq);
      }
    }
  }
  return seqs;
}

describe('ews-push-bridge forward, hybrid mode', { timeout: 120_000 }, () => {
  it('counts the doorbell’s reconnects when its GetStreamingEvents is cut', async () => {
    const sim = await EwsSimulator.start({ users: { [USER]: PASSWORD } });
    cleanups.push(() => sim.close());
    const l = await startCaptureListener();
    cleanups.push(() => l.close());
    const dir = mkdtempSync(join(tmpdir(), 'ews-cli-doorbell-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bridge.json');
    writeFileSync(
      file,
      JSON.stringify({
        ews: { url: sim.url, auth: { type: 'basic', username: USER, passwordEnv: 'BRIDGE_TEST_PASSWORD' } },
        mode: 'hybrid',
        folders: ['inbox'],
        // The safety-net poll stays out of the way: a fast delivery after the cut is the doorbell's.
        pollIntervalSeconds: 600,
        listener: { url: l.url, statusFrequencyMinutes: 30 },
        metrics: { port: 0 },
        log: { level: 'debug' },
      }),
    );

    const child = spawnCli(['forward', '--config', file], { BRIDGE_TEST_PASSWORD: PASSWORD });
    const [, metricsUrl] = await child.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/);
    await child.waitFor(/all subscriptions connected/);
    const scrape = async (): Promise<string> => (await fetch(`${metricsUrl!}/metrics`)).text();
    const label = '{mailbox=""}';

    await until(async () => sample(await scrape(), `ews_bridge_doorbell_connected${label}`) === 1, 'the doorbell connected', SCRAPE_POLL);
    // Present from the start with a zero sample; the account's own mailbox is "" here and in /healthz.
    expect(sample(await scrape(), `ews_bridge_doorbell_reconnects_total${label}`)).toBe(0);
    expect(await (await fetch(`${metricsUrl!}/healthz`)).json()).toMatchObject({ status: 'ok', mailboxes: [{ mailbox: '' }] });

    sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    const { seq } = sim.deliver(USER, { type: 'NewMail' });
    await until(() => receivedSeqs(l).includes(seq), 'the event at the listener', SCRAPE_POLL);
    await until(async () => {
      const text = await scrape();
      return sample(text, `ews_bridge_doorbell_reconnects_total${label}`) === 1 && sample(text, `ews_bridge_doorbell_connected${label}`) === 1;
    }, 'the doorbell reconnect counted', SCRAPE_POLL);
    const text = await scrape();
    expect(text).toContain('# TYPE ews_bridge_doorbell_reconnects_total counter');
    expect(text).toContain('# TYPE ews_bridge_doorbell_connected gauge');
    // The pull side never lost its subscription or connection.
    expect(sample(text, `ews_bridge_reconnects_total${label}`)).toBe(0);
    expect(sample(text, `ews_bridge_connected${label}`)).toBe(1);
    expect(child.stderr()).toMatch(/doorbell disconnected; reconnecting/);
    expect(sim.requests.filter((r) => r.operation === 'GetStreamingEvents').length).toBeGreaterThanOrEqual(2);

    child.process.kill('SIGTERM');
    expect(await child.exited()).toBe(0);
    expect(child.stderr() + child.stdout()).not.toContain(PASSWORD);
  });
});
