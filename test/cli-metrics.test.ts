/**
 * The Prometheus text the bridge serves, and its metrics server: cumulative histogram buckets,
 * escaped label values, one TYPE per family, and /healthz's status codes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeMetrics, Histogram, startMetricsServer, type MetricsServer } from '../lib/cli/metrics.js';

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('bridge metrics', () => {
  it('renders counters with escaped labels and cumulative histogram buckets', () => {
    const m = new BridgeMetrics();
    m.eventsDelivered.inc({ mailbox: 'a"b\\c@contoso.com' }, 3);
    m.gaps.inc({ mailbox: 'x@contoso.com', events_may_be_lost: 'true' });
    const text = m.render();
    expect(text).toContain('# TYPE ews_bridge_events_delivered_total counter');
    expect(text).toContain('ews_bridge_events_delivered_total{mailbox="a\\"b\\\\c@contoso.com"} 3');
    expect(text).toContain('ews_bridge_gaps_total{events_may_be_lost="true",mailbox="x@contoso.com"} 1');

    const h = new Histogram('t_seconds', 'test', [0.01, 0.1, 1]);
    for (const v of [0.005, 0.05, 0.05, 0.5, 5]) h.observe({ mailbox: 'm' }, v);
    expect(h.render()).toEqual([
      '# HELP t_seconds test',
      '# TYPE t_seconds histogram',
      't_seconds_bucket{mailbox="m",le="0.01"} 1',
      't_seconds_bucket{mailbox="m",le="0.1"} 3',
      't_seconds_bucket{mailbox="m",le="1"} 4',
      't_seconds_bucket{mailbox="m",le="+Inf"} 5',
      't_seconds_sum{mailbox="m"} 5.605',
      't_seconds_count{mailbox="m"} 5',
    ]);
  });

  it('serves /metrics, /healthz (200 or 503) and nothing else', async () => {
    let healthy = true;
    const server = await startMetricsServer({ port: 0, metrics: () => 'x_total 1\n', health: () => ({ healthy, details: { status: healthy ? 'ok' : 'unhealthy' } }) });
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
