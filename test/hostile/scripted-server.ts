/**
 * A tiny scripted EWS server on 127.0.0.1:0 for the hostile-server tests: each request is routed by
 * its operation to a handler the test writes, and every request is recorded (operation, body,
 * headers), so a test counts what the client did with the server, not with its own timers.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Observable, Subscription } from 'rxjs';
import { EwsBridgeError } from '../../lib/errors.js';
import type { SourceSignal } from '../../lib/sources/lifecycle.js';
import { NO_ERROR, notificationXml, responseEnvelope, responseMessage, type WireNotification } from '../../lib/testing/response-writer.js';

export type Operation = 'Subscribe' | 'GetEvents' | 'GetStreamingEvents' | 'Unsubscribe' | 'Other';

/** One request the server received. */
export interface Recorded {
  readonly operation: Operation;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** 1 for the first request of this operation, 2 for the second, …. */
  readonly n: number;
}

/** Answers one request. */
export type Handler = (res: ServerResponse, request: Recorded, req: IncomingMessage) => void;

export interface ScriptedServer {
  readonly url: string;
  readonly requests: Recorded[];
  count(operation: Operation): number;
  close(): Promise<void>;
}

function operationOf(body: string): Operation {
  if (body.includes(':GetStreamingEvents>') || body.includes('<GetStreamingEvents')) return 'GetStreamingEvents';
  if (body.includes(':GetEvents>') || body.includes('<GetEvents')) return 'GetEvents';
  if (body.includes(':Unsubscribe>') || body.includes('<Unsubscribe')) return 'Unsubscribe';
  if (body.includes(':Subscribe>') || body.includes('<Subscribe')) return 'Subscribe';
  return 'Other';
}

const XML = { 'Content-Type': 'text/xml; charset=utf-8' } as const;

/** A Subscribe answer (pull when `watermark` is given). */
export function subscribeOk(res: ServerResponse, subscriptionId: string, watermark?: string): void {
  res.writeHead(200, XML);
  const wm = watermark === undefined ? '' : `<m:Watermark>${watermark}</m:Watermark>`;
  res.end(responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, `<m:SubscriptionId>${subscriptionId}</m:SubscriptionId>${wm}`)]));
}

/** A GetEvents answer with one notification. */
export function getEventsOk(res: ServerResponse, notification: WireNotification): void {
  res.writeHead(200, XML);
  res.end(responseEnvelope('GetEvents', [responseMessage('GetEventsResponseMessage', NO_ERROR, notificationXml(notification))]));
}

/** A raw answer. */
export function answer(res: ServerResponse, status: number, body: string | Uint8Array, headers: Record<string, string> = XML): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function unsubscribeOk(res: ServerResponse): void {
  answer(res, 200, responseEnvelope('Unsubscribe', [responseMessage('UnsubscribeResponseMessage', NO_ERROR)]));
}

/** Starts a server; operations without a handler get Unsubscribe's answer (or a 500 for others). */
export async function scriptedServer(handlers: Partial<Record<Operation, Handler>>): Promise<ScriptedServer> {
  const requests: Recorded[] = [];
  const counts = new Map<Operation, number>();
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const operation = operationOf(body);
      const n = (counts.get(operation) ?? 0) + 1;
      counts.set(operation, n);
      const recorded: Recorded = { operation, body, headers: req.headers, n };
      requests.push(recorded);
      open.add(res);
      res.on('close', () => open.delete(res));
      const handler = handlers[operation];
      if (handler) handler(res, recorded, req);
      else if (operation === 'Unsubscribe') unsubscribeOk(res);
      else answer(res, 500, 'no handler');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`,
    requests,
    count: (operation) => counts.get(operation) ?? 0,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The suite's polling wait (test/helpers/until.ts), re-exported for the hostile tests. */
export { until } from '../helpers/until.js';

/** A running source: its signals and how it ended. */
export interface Run {
  readonly signals: SourceSignal[];
  error: unknown;
  completed: boolean;
  readonly subscription: Subscription;
  /** Every error the source surfaced: in `retrying` and `disconnected` signals, and the one it died with. */
  errors(): unknown[];
  stop(): void;
}

export function run(source: Observable<SourceSignal>): Run {
  const signals: SourceSignal[] = [];
  const r: { error: unknown; completed: boolean } = { error: undefined, completed: false };
  const subscription = source.subscribe({
    next: (s) => signals.push(s),
    error: (e: unknown) => (r.error = e),
    complete: () => (r.completed = true),
  });
  return {
    signals,
    get error() {
      return r.error;
    },
    set error(e) {
      r.error = e;
    },
    get completed() {
      return r.completed;
    },
    set completed(c) {
      r.completed = c;
    },
    subscription,
    errors: () => [
      ...signals.flatMap((s) => ((s.type === 'retrying' || s.type === 'disconnected') && s.error !== undefined ? [s.error] : [])),
      ...(r.error === undefined ? [] : [r.error]),
    ],
    stop: () => subscription.unsubscribe(),
  };
}

/** What an error is, for an assertion message that says what went wrong. */
export function describeError(error: unknown): string {
  if (error instanceof EwsBridgeError) return `${error.name}(${error.code}): ${error.message}`;
  return error instanceof Error ? `${error.name} (no code): ${error.message}` : String(error);
}

/** Whether `error` is one of ours with a stable code. */
export function isTyped(error: unknown): boolean {
  return error instanceof EwsBridgeError && typeof error.code === 'string' && error.code.startsWith('EWS_');
}
