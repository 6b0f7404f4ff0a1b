/**
 * `ews-push-bridge demo`, run as a user runs it (a child process, no flags but the ones under
 * test): it ends by itself, and its summary adds up — every produced event is delivered or counted
 * as lost, no loss outside a gap the bridge reported, none at all with watermarks, and every EWS
 * subscription removed on exit.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { summaryText, type DemoSummary } from '../cli/demo.js';
import { ROOT, killAll, runCli } from './helpers/cli-process.js';

afterEach(killAll);

async function demoJson(...args: string[]): Promise<DemoSummary> {
  const { code, stdout, stderr } = await runCli(['demo', '--json', ...args]);
  // Progress goes to stderr (off a terminal: plain timestamped lines), so a run never looks hung.
  expect(stderr).toMatch(/^ *\d+\.\ds {2}EwsSimulator at http:\/\/127\.0\.0\.1:\d+/);
  for (const line of stderr.trimEnd().split("\n")) expect(line).toMatch(/^( *\d+\.\ds {2}| {8})\S/);
  expect(stderr).not.toContain('\x1b');
  // Machine-readable output: no cursor control, nothing but the JSON document.
  expect(stdout).not.toContain('\x1b');
  const summary = JSON.parse(stdout) as DemoSummary;
  expect(code, stdout).toBe(summary.ok ? 0 : 1);
  return summary;
}

function checkAccounting(s: DemoSummary, events: number): void {
  expect(s.produced).toBe(events);
  expect(s.delivered + s.lost + s.vanishedInGaps).toBe(s.produced);
  // Only streaming recovers (SyncFolderItems); an event both streamed and recovered inside a gap
  // window is the one duplicate it may deliver.
  expect(s.duplicates).toBeLessThanOrEqual(s.recovered);
  if (s.mode !== 'streaming') expect([s.recovered, s.coalesced, s.vanishedInGaps]).toEqual([0, 0, 0]);
  expect(s.lostUnexplained).toBe(0);
  expect(s.lostInReportedGaps).toBe(s.lost);
  expect(s.subscriptionsLeft).toBe(0);
  expect(s.interrupted).toBe(false);
  expect(s.latencyMs.p50).toBeGreaterThan(0);
  expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p99);
  expect(s.latencyMs.p99).toBeLessThanOrEqual(s.latencyMs.max);
  expect(s.durationMs).toBeGreaterThan(0);
}

describe('ews-push-bridge demo', () => {
  it('streaming (the default): faults injected and recovered from, nothing lost (gaps recovered with SyncFolderItems)', async () => {
    const s = await demoJson('--events', '800');
    checkAccounting(s, 800);
    expect(s.mode).toBe('streaming');
    expect(s.ok).toBe(true);
    expect(s.faults.map((f) => f.name)).toEqual(['forced Closed', 'cut socket', 'server-busy']);
    for (const fault of s.faults) expect(fault.recoveredAfterMs, fault.name).toBeGreaterThanOrEqual(0);
    // The server asked for 500 ms of back-off, and the bridge waited it.
    expect(s.faults[2]?.recoveredAfterMs).toBeGreaterThanOrEqual(450);
    // Closed ends both streams (2), the cut one (1), the Closed that exposes server-busy both again (2).
    expect(s.reconnects).toBe(5);
    expect(s.doorbellReconnects).toBe(0);
    // What the cut socket carried is recovered from the stored sync states: nothing lost, no gap left lossy.
    expect(s.lost).toBe(0);
    expect(s.gapsMayHaveLostEvents).toBe(0);
    // The one-line summary says how many were recovered.
    if (s.recovered > 0) expect(summaryText(s, 200)[0]).toMatch(/^800 events produced, [\d,]+ delivered, 0 lost \(\d+ recovered after gaps(, \d+ deleted before recovery)?\), p99 /);
  });

  it('hybrid: the same faults, nothing lost (pull resumes from the watermark)', async () => {
    const s = await demoJson('--events', '800', '--mode', 'hybrid');
    checkAccounting(s, 800);
    expect(s.ok).toBe(true);
    expect(s.lost).toBe(0);
    expect(s.delivered).toBe(800);
    for (const fault of s.faults) expect(fault.recoveredAfterMs, fault.name).toBeGreaterThanOrEqual(0);
    // The doorbell streams reopened after the Closed (2) and the cut (1); server-busy hit GetEvents.
    expect(s.doorbellReconnects).toBe(3);
    expect(s.reconnects).toBeGreaterThanOrEqual(4);
  });

  it('pull: a lost subscription, a cut response and a server-busy, nothing lost', async () => {
    const s = await demoJson('--events', '600', '--mode', 'pull');
    checkAccounting(s, 600);
    expect(s.ok).toBe(true);
    expect(s.lost).toBe(0);
    expect(s.faults.map((f) => f.name)).toEqual(['lost subscription', 'cut socket', 'server-busy']);
  });

  it('without a terminal: plain lines of at most 80 columns and the one-line summary', async () => {
    const { code, stdout } = await runCli(['demo', '--events', '300', '--faults', 'off']);
    expect(code).toBe(0);
    expect(stdout).not.toContain('\x1b');
    for (const line of stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(stdout).toMatch(/^300 events produced, 300 delivered, 0 lost, p99 [\d.]+\u00a0ms, 0 reconnects$/m);
    expect(stdout).toContain('Mode streaming, 2 mailboxes, 0 duplicates delivered, 0 gaps reported.');
    expect(stdout).toContain('On exit every EWS subscription was removed (Unsubscribe).');
  });

  it('refuses bad flags with exit code 2 and the usage', async () => {
    const bad = await runCli(['demo', '--events', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--events must be a whole number 1–50,000 (got "lots")');
    expect(bad.stderr).toContain('Usage: ews-push-bridge demo');
    const unknown = await runCli(['demo', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--colour'/);
    const mode = await runCli(['demo', '--mode', 'push']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('--mode must be one of streaming, pull, hybrid (got "push")');
  });
});

// `npm test` builds before running vitest: the published bin must run on its own, importing the
// package's public entries by self-reference.
describe.skipIf(!existsSync(join(ROOT, 'dist/cli.cjs')))('the built bin', () => {
  it('is package.json\'s bin and runs the demo', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin['ews-push-bridge']).toBe('./dist/cli.cjs');
    expect(pkg.scripts['demo']).toBe('tsx cli/main.ts demo');
    expect(readFileSync(join(ROOT, 'dist/cli.cjs'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist/cli.cjs'), 'demo', '--json', '--events', '200', '--faults', 'off'], { cwd: ROOT });
    const summary = JSON.parse(stdout) as DemoSummary;
    expect([summary.produced, summary.delivered, summary.lost, summary.ok]).toEqual([200, 200, 0, true]);
  });
});
