/**
 * `forward`'s observability: its metrics on prom-client (the metrics library Node services use,
 * bundled into the CLI only), with Node's process metrics beside them, and a small `node:http`
 * server for `GET /metrics` and `GET /healthz`.
 *
 * @packageDocumentation
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DisconnectReason } from '../lib/entry-types.js';

/**
 * Buckets of the latency histograms (`ews_bridge_listener_post_duration_seconds`,
 * `nodejs_gc_duration_seconds`), in seconds: a listener on the same host answers, and a minor GC
 * runs, in well under a millisecond; a slow listener takes seconds, and
 * `listener.requestTimeoutSeconds` defaults to 30.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The `kind` label values of prom-client's `nodejs_gc_duration_seconds`. */
const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'] as const;

/** Every `reason` a `retrying` signal can carry: the label values `ews_bridge_retries_total` starts at zero. */
export const RETRY_REASONS = [
  'closed',
  'ended',
  'heartbeat-timeout',
  'connection-error',
  'server-busy',
  'server-error',
  'subscription-lost',
  'connection-taken',
  'missed-events',
] as const satisfies readonly DisconnectReason[];

// A reason added to the library without being listed above fails to compile here.
const everyReasonListed: Exclude<DisconnectReason, (typeof RETRY_REASONS)[number]> extends never ? true : never = true;
void everyReasonListed;

/** Options of {@link BridgeMetrics}. */
export interface BridgeMetricsOptions {
  /** Register the hybrid doorbell's metrics. Default `false` (they mean nothing in the other modes). */
  readonly doorbell?: boolean;
  /** Export Node's process metrics (memory, CPU, event-loop lag, GC, handles). Default `true`. */
  readonly processMetrics?: boolean;
}

/**
 * The bridge's metrics, in a registry of their own. Every series is labelled `mailbox`: the
 * impersonated mailbox, or `""` for the account's own (the same value `/healthz` shows). Call
 * {@link BridgeMetrics.addMailbox} for each mailbox at start-up, so every series exists from the
 * first scrape with its zero samples (`rate()` and dashboards need them).
 */
export class BridgeMetrics {
  /** The prom-client registry holding every metric below (and the process metrics). */
  readonly registry = new Registry();
  readonly eventsDelivered: Counter<'mailbox'>;
  readonly notificationsDelivered: Counter<'mailbox'>;
  readonly listenerFailures: Counter<'mailbox'>;
  readonly gaps: Counter<'mailbox' | 'events_may_be_lost'>;
  readonly reconnects: Counter<'mailbox'>;
  readonly retries: Counter<'mailbox' | 'reason'>;
  readonly connected: Gauge<'mailbox'>;
  /** Hybrid mode only (`options.doorbell`); otherwise `undefined`. */
  readonly doorbellReconnects: Counter<'mailbox'> | undefined;
  /** Hybrid mode only (`options.doorbell`); otherwise `undefined`. */
  readonly doorbellConnected: Gauge<'mailbox'> | undefined;
  readonly postSeconds: Histogram<'mailbox'>;

  constructor(options: BridgeMetricsOptions = {}) {
    const registers = [this.registry];
    const mailbox = ['mailbox'] as const;
    this.eventsDelivered = new Counter({
      name: 'ews_bridge_events_delivered_total',
      help: 'Mailbox events the legacy listener accepted (answered OK or Unsubscribe).',
      labelNames: mailbox,
      registers,
    });
    this.notificationsDelivered = new Counter({
      name: 'ews_bridge_notifications_delivered_total',
      help: 'SendNotification posts the legacy listener accepted, keep-alive StatusEvents included.',
      labelNames: mailbox,
      registers,
    });
    this.listenerFailures = new Counter({
      name: 'ews_bridge_listener_failures_total',
      help: 'Posts to the legacy listener that failed (refused, timed out, non-2xx, not a SendNotificationResult).',
      labelNames: mailbox,
      registers,
    });
    this.gaps = new Counter({
      name: 'ews_bridge_gaps_total',
      help: 'Windows in which events may not have reached the bridge, by whether events may have been lost.',
      labelNames: ['mailbox', 'events_may_be_lost'] as const,
      registers,
    });
    this.reconnects = new Counter({
      name: 'ews_bridge_reconnects_total',
      help: 'EWS connections that ended and were reopened (streaming connections, or pull recoveries).',
      labelNames: mailbox,
      registers,
    });
    this.retries = new Counter({
      name: 'ews_bridge_retries_total',
      help: 'Failed EWS attempts that were retried, by reason.',
      labelNames: ['mailbox', 'reason'] as const,
      registers,
    });
    this.connected = new Gauge({ name: 'ews_bridge_connected', help: '1 while the mailbox subscription is connected, else 0.', labelNames: mailbox, registers });
    this.doorbellReconnects = options.doorbell
      ? new Counter({
          name: 'ews_bridge_doorbell_reconnects_total',
          help: 'Hybrid mode: streaming doorbell connections that ended and were reopened (the fast path was down meanwhile; the pull side loses nothing).',
          labelNames: mailbox,
          registers,
        })
      : undefined;
    this.doorbellConnected = options.doorbell
      ? new Gauge({
          name: 'ews_bridge_doorbell_connected',
          help: 'Hybrid mode: 1 while the streaming doorbell (the fast path) is connected, else 0.',
          labelNames: mailbox,
          registers,
        })
      : undefined;
    this.postSeconds = new Histogram({
      name: 'ews_bridge_listener_post_duration_seconds',
      help: 'Time the legacy listener took to answer a SendNotification post (handler latency).',
      labelNames: mailbox,
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    });
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, gcDurationBuckets: [...LATENCY_BUCKETS_SECONDS] });
      // GC series appear with the first collection of each kind; start the known kinds at zero.
      const gc = this.registry.getSingleMetric('nodejs_gc_duration_seconds');
      if (gc instanceof Histogram) for (const kind of GC_KINDS) gc.zero({ kind });
    }
  }

  /** Starts every series of `mailbox` (`""` for the account's own) at zero. Idempotent. */
  addMailbox(mailbox: string): void {
    const labels = { mailbox };
    for (const counter of [this.eventsDelivered, this.notificationsDelivered, this.listenerFailures, this.reconnects, this.doorbellReconnects]) counter?.inc(labels, 0);
    for (const lost of ['true', 'false']) this.gaps.inc({ mailbox, events_may_be_lost: lost }, 0);
    for (const reason of RETRY_REASONS) this.retries.inc({ mailbox, reason }, 0);
    this.connected.set(labels, 0);
    this.doorbellConnected?.set(labels, 0);
    this.postSeconds.zero(labels);
  }

  /** The Prometheus text exposition (version 0.0.4) of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
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
  readonly metrics: () => string | Promise<string>;
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
    const failed = (error: unknown): void => {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`Internal error: ${error instanceof Error ? error.name : 'unknown'}\n`);
    };
    try {
      if (path === '/metrics') {
        Promise.resolve()
          .then(() => options.metrics())
          .then((body) => res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : body), failed);
        return;
      }
      if (path === '/healthz') {
        const health = options.health();
        res.writeHead(health.healthy ? 200 : 503, { 'Content-Type': 'application/json' }).end(req.method === 'HEAD' ? undefined : `${JSON.stringify(health.details)}\n`);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found: try /metrics or /healthz\n');
    } catch (error) {
      failed(error);
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
