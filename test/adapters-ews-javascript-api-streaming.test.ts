/**
 * ews-javascript-api apps that already stream or pull, moved to the bridge by one import.
 *
 * The apps in test/ejs-apps/ are Microsoft's streaming and pull samples as ews-javascript-api apps
 * write them, in two copies that differ only in their first line (checked below): one imports
 * `ExchangeService` (and `StreamingSubscriptionConnection`) from ews-javascript-api, the other from
 * this adapter. The bridge's copy runs (in the test's process: an unhandled rejection or uncaught
 * exception fails the run) against an EwsSimulator, through
 * Closed every 2 s (the baseline of every streaming scenario), a mid-envelope cut, ErrorServerBusy,
 * a lost subscription, HTTP 500 and HTTP 401 (test/helpers/ejs-side-by-side.ts).
 *
 * Asserted: the app's delegates get every event once, in wire order, except events made inside a
 * window the bridge reported as lossy (`OnGap`; the invariant helper); the process stays up; the
 * requests stay bounded (no hot loop). A 401 on a stream is the error the app must act on:
 * `OnSubscriptionError` once, then silence. The same apps on ews-javascript-api's own classes, side
 * by side: `npx tsx bench/ejs-apps-side-by-side.ts` (a table of what each lost).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENTS_PER_PHASE, SCENARIOS, count, runScenario, type SampleApp, type Scenario } from './helpers/ejs-side-by-side.js';
import { expectReceivedExceptLossyGaps } from './helpers/streaming-harness.js';

describe('the sample apps', () => {
  it('differ only in their import of ExchangeService / StreamingSubscriptionConnection', () => {
    for (const app of ['streaming-app', 'pull-app']) {
      const ews = readFileSync(new URL(`./ejs-apps/${app}.ews.ts`, import.meta.url), 'utf8').split('\n');
      const bridge = readFileSync(new URL(`./ejs-apps/${app}.bridge.ts`, import.meta.url), 'utf8').split('\n');
      expect(bridge.length).toBe(ews.length);
      const differing = ews.flatMap((line, i) => (line === bridge[i] ? [] : [i + 1]));
      expect(differing, app).toEqual([1]);
      expect(ews[0]).toMatch(/from 'ews-javascript-api';$/);
      expect(bridge[0]).toMatch(/from '\.\.\/\.\.\/adapters\/ews-javascript-api\.js';$/);
    }
  });
});

async function check(app: SampleApp, scenario: Scenario): Promise<void> {
  const result = await runScenario(app, scenario, ['bridge'], 'in-process');
  const { run, sim, delivered, requestsAtError } = result.clients[0]!;
  const label = `${app} / ${scenario.name}: `;

  expect(run.endedByItself, `${label}the app's process stays up`).toBeUndefined();
  if (scenario.fatalFor === app) {
    expect(run.received, `${label}every event before the refusal, once, in order`).toEqual(delivered.slice(0, EVENTS_PER_PHASE).map((d) => d.seq));
    expect(run.errors, `${label}OnSubscriptionError once`).toHaveLength(1);
    // No retries after a refusal: the server hears nothing more.
    expect(count(sim, 'Subscribe', 'GetStreamingEvents', 'GetEvents'), `${label}no requests after the refusal`).toBe(requestsAtError);
  } else {
    const lost = expectReceivedExceptLossyGaps(run.received, delivered, run.lossyGaps, label);
    // Watermarks (pull), a clean Closed, a refused connect: nothing may be lost, not even in a gap.
    // A cut or a lost stream subscription may lose what the server had written (reported).
    if (app === 'pull' || !['mid-envelope cut', 'lost subscription'].includes(scenario.name)) expect(lost, `${label}nothing lost`).toEqual([]);
    // A one-off 401 on a pull: GetEvents() rejects once (as before), the next call goes on.
    expect(run.errors, `${label}errors handed to the app`).toHaveLength(scenario.name === 'HTTP 401' ? 1 : 0);
  }
  // No hot loop: a stream per Closed cycle (2 s) plus a few for the fault; a poll per 50 ms (the test's pollIntervalMs).
  if (app === 'streaming') {
    expect(count(sim, 'GetStreamingEvents'), `${label}GetStreamingEvents`).toBeLessThanOrEqual(Math.ceil(result.elapsedMs / 2_000) + 6);
  } else {
    expect(count(sim, 'GetEvents'), `${label}GetEvents`).toBeLessThanOrEqual(Math.ceil(result.elapsedMs / 50) + 20);
  }
  const subscribes = count(sim, 'Subscribe');
  expect(subscribes, `${label}Subscribe calls`).toBeLessThanOrEqual(scenario.name === 'lost subscription' || (app === 'pull' && scenario.name === 'HTTP 401') ? 2 : 1);
}

// Two lanes (streaming, pull) side by side; the scenarios of each one after another.
describe.concurrent.each(['streaming', 'pull'] as const)('the %s sample on the bridge, under faults', (app) => {
  describe.sequential('each fault', () => {
    it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
      await check(app, scenario);
    }, 90_000);
  });
});
