/**
 * `forward`'s observability: a few counters, gauges and one histogram in the Prometheus text
 * exposition format (version 0.0.4), and a small `node:http` server for `GET /metrics` and
 * `GET /healthz`. Hand-written on purpose: the bridge needs five metrics, not a metrics library.
 *
 * @packageDocumentation
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type Labels = Readonly<Record<string, string>>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`)
    .join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  render(): string[];
}

/** A monotonically increasing count, per label set. */
export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  /** The current value of a series (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values].map(([k, v]) => `${this.name}${k === '' ? '' : `{${k}}`} ${formatNumber(v)}`)];
  }
}

/** A value that goes up and down, per label set. */
export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), value);
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...[...this.values].map(([k, v]) => `${this.name}${k === '' ? '' : `{${k}}`} ${formatNumber(v)}`)];
  }
}

/** A histogram with fixed buckets (upper bounds, in the metric's unit), per label set. */
export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] ?? Infinity)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key === '' ? '' : ',';
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{${key}${sep}le="${formatNumber(le)}"} ${s.counts[i] ?? 0}`));
      lines.push(`${this.name}_bucket{${key}${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${key === '' ? '' : `{${key}}`} ${formatNumber(s.sum)}`);
      lines.push(`${this.name}_count${key === '' ? '' : `{${key}}`} ${s.count}`);
    }
    return lines;
  }
}

/** The bridge's metrics. Every series is labelled with the mailbox (`""` for the account's own). */
export class BridgeMetrics {
  readonly eventsDelivered = new Counter('ews_bridge_events_delivered_total', 'Mailbox events the legacy listener accepted (answered OK or Unsubscribe).');
  readonly notificationsDelivered = new Counter('ews_bridge_notifications_delivered_total', 'SendNotification posts the legacy listener accepted, keep-alive StatusEvents included.');
  readonly listenerFailures = new Counter('ews_bridge_listener_failures_total', 'Posts to the legacy listener that failed (refused, timed out, non-2xx, not a SendNotificationResult).');
  readonly gaps = new Counter('ews_bridge_gaps_total', 'Windows in which events may not have reached the bridge, by whether events may have been lost.');
  readonly reconnects = new Counter('ews_bridge_reconnects_total', 'EWS connections that ended and were reopened (streaming connections, or pull recoveries).');
  readonly retries = new Counter('ews_bridge_retries_total', 'Failed EWS attempts that were retried, by reason.');
  readonly connected = new Gauge('ews_bridge_connected', '1 while the mailbox subscription is connected, else 0.');
  readonly doorbellReconnects = new Counter(
    'ews_bridge_doorbell_reconnects_total',
    'Hybrid mode: streaming doorbell connections that ended and were reopened (the fast path was down meanwhile; the pull side loses nothing).',
  );
  readonly doorbellConnected = new Gauge('ews_bridge_doorbell_connected', 'Hybrid mode: 1 while the streaming doorbell (the fast path) is connected, else 0.');
  readonly postSeconds = new Histogram(
    'ews_bridge_listener_post_duration_seconds',
    'Time the legacy listener took to answer a SendNotification post (handler latency).',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const all: Metric[] = [
      this.eventsDelivered,
      this.notificationsDelivered,
      this.listenerFailures,
      this.gaps,
      this.reconnects,
      this.retries,
      this.connected,
      this.doorbellReconnects,
      this.doorbellConnected,
      this.postSeconds,
    ];
    return `${all.flatMap((m) => m.render()).join('\n')}\n`;
  }
}

/** What `/healthz` answers. */
export interface Health {
  readonly healthy: boolean;
  /** Serialized as the JSON body. */
  readonly details: unknown;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Port; `0` picks a free one (see the returned `url`). Required. */
  readonly port: number;
  /** Address to listen on. Default `'127.0.0.1'` (expose it deliberately). */
  readonly host?: string;
  /** The `/metrics` body. Required. */
  readonly metrics: () => string;
  /** The `/healthz` answer: 200 when healthy, 503 otherwise. Required. */
  readonly health: () => Health;
}

/** A running metrics server. */
export interface MetricsServer {
  /** `http://host:port`. */
  readonly url: string;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz` (JSON; 200 healthy, 503 not).
 *
 * @throws The listen error (e.g. `EADDRINUSE`), with the port in the message.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    res.on('error', () => undefined);
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    try {
      if (path === '/metrics') {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : options.metrics());
        return;
      }
      if (path === '/healthz') {
        const health = options.health();
        res.writeHead(health.healthy ? 200 : 503, { 'Content-Type': 'application/json' }).end(req.method === 'HEAD' ? undefined : `${JSON.stringify(health.details)}\n`);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found: try /metrics or /healthz\n');
    } catch (error) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`Internal error: ${error instanceof Error ? error.name : 'unknown'}\n`);
    }
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new Error(`Cannot serve metrics on ${host}:${options.port} (${error.code ?? error.message})`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After listening, errors of single connections must not crash the process.
  server.on('error', () => undefined);
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}
