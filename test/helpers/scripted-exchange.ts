/**
 * A scripted "Exchange" on 127.0.0.1 for hostile-server tests: each request is answered by a
 * handler chosen by its SOAP operation, and every request is recorded with its arrival time, so a
 * test counts what the client sent — requests per second as the server saw them, not as the
 * client's timers meant them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

/** The EWS operations a source sends. */
export type Operation = 'Subscribe' | 'GetStreamingEvents' | 'GetEvents' | 'Unsubscribe' | 'Other';

/** One request as the scripted server received it. */
export interface ScriptedRequest {
  readonly operation: Operation;
  /** `performance.now()` at arrival. */
  readonly atMs: number;
  readonly body: string;
}

/** Answers one request; the response is the handler's to write and end (or not). */
export type ScriptedHandler = (res: ServerResponse, request: ScriptedRequest, req: IncomingMessage) => void;

/** A running scripted server. */
export interface ScriptedExchange {
  readonly url: string;
  readonly requests: ScriptedRequest[];
  /** `performance.now()` when the server started. */
  readonly startedAtMs: number;
  /** Requests of `operation` that arrived between `fromMs` and `toMs` after the start. */
  count(operation: Operation, fromMs?: number, toMs?: number): number;
  /** Destroys every socket and closes the server. */
  close(): Promise<void>;
}

function operationOf(req: IncomingMessage): Operation {
  const action = String(req.headers['soapaction'] ?? '');
  for (const op of ['GetStreamingEvents', 'GetEvents', 'Unsubscribe', 'Subscribe'] as const) if (action.endsWith(`/${op}"`) || action.endsWith(`/${op}`)) return op;
  return 'Other';
}

/** Starts a scripted server; operations without a handler get an HTTP 500 with an empty body. */
export async function startScriptedExchange(handlers: Partial<Record<Operation, ScriptedHandler>>): Promise<ScriptedExchange> {
  const requests: ScriptedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ScriptedRequest = { operation: operationOf(req), atMs: performance.now(), body: Buffer.concat(chunks).toString('utf8') };
      requests.push(request);
      const handler = handlers[request.operation];
      if (handler) handler(res, request, req);
      else res.writeHead(500).end();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const startedAtMs = performance.now();
  return {
    url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`,
    requests,
    startedAtMs,
    count(operation, fromMs = 0, toMs = Infinity) {
      return requests.filter((r) => r.operation === operation && r.atMs - startedAtMs >= fromMs && r.atMs - startedAtMs < toMs).length;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

/** Writes a complete XML answer. */
export function answerXml(res: ServerResponse, body: string, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', ...headers });
  res.end(body);
}

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

function envelope(body: string): string {
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP}"><s:Body>${body}</s:Body></s:Envelope>`;
}

/** A pull Subscribe success with an id and a starting watermark. */
export function pullSubscribeResponse(subscriptionId: string, watermark: string): string {
  return envelope(
    `<m:SubscribeResponse xmlns:m="${M}" xmlns:t="${T}"><m:ResponseMessages>` +
      `<m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
      `<m:SubscriptionId>${subscriptionId}</m:SubscriptionId><m:Watermark>${watermark}</m:Watermark></m:SubscribeResponseMessage>` +
      `</m:ResponseMessages></m:SubscribeResponse>`,
  );
}

/** A GetEvents answer holding only a StatusEvent, with the given `MoreEvents`. */
export function statusOnlyGetEventsResponse(subscriptionId: string, previousWatermark: string, watermark: string, moreEvents: boolean): string {
  return envelope(
    `<m:GetEventsResponse xmlns:m="${M}" xmlns:t="${T}"><m:ResponseMessages>` +
      `<m:GetEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notification>` +
      `<t:SubscriptionId>${subscriptionId}</t:SubscriptionId><t:PreviousWatermark>${previousWatermark}</t:PreviousWatermark>` +
      `<t:MoreEvents>${moreEvents}</t:MoreEvents><t:StatusEvent><t:Watermark>${watermark}</t:Watermark></t:StatusEvent>` +
      `</m:Notification></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>`,
  );
}
