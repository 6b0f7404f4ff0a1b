/**
 * The bridge's metrics on prom-client and its metrics server: every series present from the
 * start with zero samples, Node's process metrics beside them, escaped label values, cumulative
 * histogram buckets from sub-millisecond to a minute, one TYPE per family, and /healthz's status codes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeMetrics, LATENCY_BUCKETS_SECONDS, RETRY_REASONS, startMetricsServer, type MetricsServer } from '../cli/metrics.js';
import { parsePrometheus } from './helpers/prometheus.js';

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});


const ALICE = 'alice@contoso.com';
const ODD = 'a"b\\c@contoso.com';

describe('bridge metrics', () => {
  it('has every series of each mailbox from the start, with zero samples', async () => {
    const m = new BridgeMetrics({ doorbell: true, processMetrics: false });
    m.addMailbox('');
    m.addMailbox(ALICE);
    const { samples, types } = parsePrometheus(await m.render());
    for (const mailbox of ['', ALICE]) {
      const l = `mailbox="${mailbox}"`;
      for (const name of [
        'ews_bridge_events_delivered_total',
        'ews_bridge_notifications_delivered_total',
        'ews_bridge_listener_failures_total',
        'ews_bridge_reconnects_total',
        'ews_bridge_doorbell_reconnects_total',
        'ews_bridge_connected',
        'ews_bridge_doorbell_connected',
        'ews_bridge_listener_post_duration_seconds_count',
        'ews_bridge_listener_post_duration_seconds_sum',
      ]) {
        expect(samples.get(`${name}{${l}}`), `${name}{${l}}`).toBe(0);
      }
      expect(samples.get(`ews_bridge_gaps_total{${l},events_may_be_lost="true"}`)).toBe(0);
      expect(samples.get(`ews_bridge_gaps_total{${l},events_may_be_lost="false"}`)).toBe(0);
      for (const reason of RETRY_REASONS) expect(samples.get(`ews_bridge_retries_total{${l},reason="${reason}"}`)).toBe(0);
      expect(samples.get(`ews_bridge_listener_post_duration_seconds_bucket{le="+Inf",${l}}`)).toBe(0);
    }
    // Every counter family of the bridge has samples (not just a TYPE line).
    const counters = [...types].filter(([name, type]) => type === 'counter' && name.startsWith('ews_bridge_')).map(([name]) => name);
    expect(counters).toHaveLength(7);
    for (const name of counters) expect([...samples.keys()].some((k) => k.startsWith(`${name}{`)), name).toBe(true);
  });

  it('registers the doorbell metrics only for hybrid mode', async () => {
    const m = new BridgeMetrics({ processMetrics: false });
    m.addMailbox(ALICE);
    expect(m.doorbellConnected).toBeUndefined();
    expect(await m.render()).not.toContain('doorbell');
  });

  it('exports Node process metrics: memory, CPU, event-loop lag, GC', async () => {
    const m = new BridgeMetrics();
    const { samples, types } = parsePrometheus(await m.render());
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(samples.has(name), name).toBe(true);
    }
    expect(types.get('nodejs_gc_duration_seconds')).toBe('histogram');
    expect(samples.get('nodejs_gc_duration_seconds_bucket{le="0.0001",kind="minor"}')).toBeGreaterThanOrEqual(0);
    expect(samples.has('nodejs_gc_duration_seconds_count{kind="major"}')).toBe(true);
  });

  it('escapes label values and keeps histogram buckets cumulative, sub-millisecond to a minute', async () => {
    const m = new BridgeMetrics({ processMetrics: false });
    m.addMailbox(ODD);
    m.eventsDelivered.inc({ mailbox: ODD }, 3);
    m.gaps.inc({ mailbox: 'x@contoso.com', events_may_be_lost: 'true' });
    for (const v of [0.00005, 0.0003, 0.002, 0.5, 45, 100]) m.postSeconds.observe({ mailbox: ODD }, v);
    const text = await m.render();
    expect(text).toContain('# TYPE ews_bridge_events_delivered_total counter');
    expect(text).toContain('ews_bridge_events_delivered_total{mailbox="a\\"b\\\\c@contoso.com"} 3');
    expect(text).toContain('ews_bridge_gaps_total{mailbox="x@contoso.com",events_may_be_lost="true"} 1');
    const { samples } = parsePrometheus(text);
    const bucket = (le: string): number | undefined => samples.get(`ews_bridge_listener_post_duration_seconds_bucket{le="${le}",mailbox="a\\"b\\\\c@contoso.com"}`);
    expect(LATENCY_BUCKETS_SECONDS[0]).toBeLessThan(0.001);
    expect(LATENCY_BUCKETS_SECONDS.at(-1)).toBeGreaterThanOrEqual(30);
    expect([bucket('0.0001'), bucket('0.0005'), bucket('0.0025'), bucket('0.5'), bucket('60'), bucket('+Inf')]).toEqual([1, 2, 3, 4, 5, 6]);
    let previous = 0;
    for (const le of LATENCY_BUCKETS_SECONDS) {
      const count = bucket(String(le))!;
      expect(count).toBeGreaterThanOrEqual(previous);
      previous = count;
    }
  });

  it('serves /metrics, /healthz (200 or 503) and nothing else', async () => {
    let healthy = true;
    // The body may come from a promise (prom-client's registry renders asynchronously).
    const server = await startMetricsServer({ port: 0, metrics: () => Promise.resolve('x_total 1\n'), health: () => ({ healthy, details: { status: healthy ? 'ok' : 'unhealthy' } }) });
    servers.push(server);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toBe('x_total 1\n');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    healthy = false;
    const down = await fetch(`${server.url}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'unhealthy' });
    expect((await fetch(`${server.url}/`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('names the port when it cannot listen', async () => {
    const first = await startMetricsServer({ port: 0, metrics: () => '', health: () => ({ healthy: true, details: {} }) });
    servers.push(first);
    const port = Number(new URL(first.url).port);
    await expect(startMetricsServer({ port, metrics: () => '', health: () => ({ healthy: true, details: {} }) })).rejects.toThrow(
      `Cannot serve metrics on 127.0.0.1:${port} (EADDRINUSE)`,
    );
  });
});
