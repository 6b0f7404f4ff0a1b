/**
 * A minimal EWS endpoint on 127.0.0.1 for the benches: it answers Subscribe, Unsubscribe and
 * GetEvents from templates and lets each bench decide, byte for byte, what a GetStreamingEvents
 * response carries and when (exact HTTP chunk sizes, pacing). EwsSimulator models the protocol;
 * this server models nothing, so that what is measured is the client.
 *
 * Requests are recognised by their body's operation element, whatever the prefix (our requests
 * and ews-javascript-api's differ). Authentication is accepted as sent.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NO_ERROR, responseEnvelope, responseMessage } from '../lib/testing/response-writer.js';
import { SUBSCRIPTION_ID, connectionStatusEnvelope } from './stream-fixture.js';

/** What a GetStreamingEvents handler is told about the request. */
export interface StreamRequest {
  /** The subscription ids the client asked for. */
  readonly subscriptionIds: readonly string[];
  /** Whether one of them had not been streamed since it was (re)created by a Subscribe. */
  readonly fresh: boolean;
}

/** Writes a GetStreamingEvents response (status line included) and ends it, or holds it open. */
export type StreamHandler = (res: http.ServerResponse, request: StreamRequest) => void;

/** Answers one GetEvents call: the response body, given the subscription id and watermark sent. */
export type GetEventsHandler = (subscriptionId: string, watermark: string) => string;

/** Options of {@link RawEwsServer.start}. */
export interface RawEwsServerOptions {
  /**
   * Give every Subscribe a new subscription id (`sub-1`, `sub-2`…) instead of the fixture's
   * {@link SUBSCRIPTION_ID}, which the pre-generated streams carry. Default `false`.
   */
  readonly uniqueSubscriptionIds?: boolean;
  /** The watermark a pull Subscribe returns. Default `'start'`. */
  readonly pullStartWatermark?: string;
}

const OPERATION = /<(?:[\w.-]+:)?(Unsubscribe|Subscribe|GetStreamingEvents|GetEvents)[\s>/]/;
const SUBSCRIPTION_IDS = /<(?:[\w.-]+:)?SubscriptionId>([^<]*)</g;
const WATERMARK = /<(?:[\w.-]+:)?Watermark>([^<]*)</;

const KEEP_ALIVE = Buffer.from(`${connectionStatusEnvelope('OK')}\r\n`);

/**
 * Holds a streaming response open after one keep-alive envelope (so every client counts as
 * connected) until the client goes away.
 */
export const holdOpen: StreamHandler = (res) => {
  res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
  res.write(KEEP_ALIVE);
};

/** The loopback EWS endpoint. Start with {@link RawEwsServer.start}; always {@link RawEwsServer.close}. */
export class RawEwsServer {
  /** What the next GetStreamingEvents responses carry. Default {@link holdOpen}. */
  onStream: StreamHandler = holdOpen;
  /** How GetEvents is answered. Default: a StatusEvent at the same watermark. */
  onGetEvents: GetEventsHandler = (subscriptionId, watermark) => getEventsResponse(subscriptionId, watermark, '', false);
  /** Counts of requests served, by operation. */
  readonly served = { Subscribe: 0, Unsubscribe: 0, GetStreamingEvents: 0, GetEvents: 0 };
  /** Streaming responses currently open. */
  openStreams = 0;

  private readonly fresh = new Set<string>();
  private nextId = 1;

  private constructor(
    private readonly server: http.Server,
    private readonly options: RawEwsServerOptions,
  ) {}

  /** Listens on 127.0.0.1, port 0. */
  static async start(options: RawEwsServerOptions = {}): Promise<RawEwsServer> {
    const server = http.createServer({ keepAlive: true });
    const raw = new RawEwsServer(server, options);
    server.on('request', (req, res) => raw.handle(req, res));
    // Clients that go away mid-response (they all do, at teardown) must not crash the bench.
    server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return raw;
  }

  /** The EWS URL to give clients. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/EWS/Exchange.asmx`;
  }

  /** Stops listening and cuts every connection. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.on('error', () => undefined);
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      const operation = OPERATION.exec(body)?.[1];
      switch (operation) {
        case 'Subscribe':
          return this.subscribe(body, res);
        case 'Unsubscribe':
          this.served.Unsubscribe++;
          return this.reply(res, responseEnvelope('Unsubscribe', [responseMessage('UnsubscribeResponseMessage', NO_ERROR)]));
        case 'GetStreamingEvents':
          return this.stream(body, res);
        case 'GetEvents':
          return this.getEvents(body, res);
        default:
          res.writeHead(400).end();
      }
    });
  }

  private subscribe(body: string, res: http.ServerResponse): void {
    this.served.Subscribe++;
    const id = this.options.uniqueSubscriptionIds === true ? `sub-${this.nextId++}` : SUBSCRIPTION_ID;
    this.fresh.add(id);
    const pull = body.includes('PullSubscriptionRequest');
    const watermark = pull ? `<m:Watermark>${this.options.pullStartWatermark ?? 'start'}</m:Watermark>` : '';
    this.reply(res, responseEnvelope('Subscribe', [responseMessage('SubscribeResponseMessage', NO_ERROR, `<m:SubscriptionId>${id}</m:SubscriptionId>${watermark}`)]));
  }

  private stream(body: string, res: http.ServerResponse): void {
    this.served.GetStreamingEvents++;
    const subscriptionIds = [...body.matchAll(SUBSCRIPTION_IDS)].map((m) => m[1] ?? '');
    let fresh = false;
    for (const id of subscriptionIds) fresh = this.fresh.delete(id) || fresh;
    this.openStreams++;
    res.once('close', () => this.openStreams--);
    this.onStream(res, { subscriptionIds, fresh });
  }

  private getEvents(body: string, res: http.ServerResponse): void {
    this.served.GetEvents++;
    const subscriptionId = [...body.matchAll(SUBSCRIPTION_IDS)][0]?.[1] ?? '';
    const watermark = WATERMARK.exec(body)?.[1] ?? '';
    this.reply(res, this.onGetEvents(subscriptionId, watermark));
  }

  private reply(res: http.ServerResponse, text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': bytes.length });
    res.end(bytes);
  }
}

/** A whole GetEvents response: one notification after `previousWatermark` with `eventsXml` (events or a StatusEvent). */
export function getEventsResponse(subscriptionId: string, previousWatermark: string, eventsXml: string, moreEvents: boolean): string {
  const events = eventsXml === '' ? `<t:StatusEvent><t:Watermark>${previousWatermark}</t:Watermark></t:StatusEvent>` : eventsXml;
  const notification =
    `<m:Notification><t:SubscriptionId>${subscriptionId}</t:SubscriptionId><t:PreviousWatermark>${previousWatermark}</t:PreviousWatermark>` +
    `<t:MoreEvents>${moreEvents}</t:MoreEvents>${events}</m:Notification>`;
  return responseEnvelope('GetEvents', [responseMessage('GetEventsResponseMessage', NO_ERROR, notification)]);
}

