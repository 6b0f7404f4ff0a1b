/**
 * Raw HTTP for the simulator tests: hand-written SOAP requests (not our request builders, so the
 * simulator is tested on its own) posted with node:http, and a streaming reader that splits a
 * GetStreamingEvents response into envelopes with our wire layer's parser.
 */
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import { EnvelopeParser } from '../../lib/ews/parser.js';
import type { EwsEnvelope, ResponseMessage } from '../../lib/ews/messages.js';
import { HANG_GUARD_MS } from './until.js';

export const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
export const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
export const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

/** A Basic `Authorization` header value. */
export function basic(user: string, password = 'secret'): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Wraps a body element in a SOAP envelope with optional header elements. */
export function envelope(body: string, header = '<t:RequestServerVersion Version="Exchange2016"/>'): string {
  return (
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${SOAP}" xmlns:m="${M}" xmlns:t="${T}">` +
    `<soap:Header>${header}</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

/** An ExchangeImpersonation header (plus RequestServerVersion). */
export function impersonating(smtp: string): string {
  return `<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>${smtp}</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`;
}

const ALL_EVENTS = ['NewMailEvent', 'CreatedEvent', 'DeletedEvent', 'ModifiedEvent', 'MovedEvent', 'CopiedEvent', 'FreeBusyChangedEvent'];

function scope(folders: readonly string[] | 'all', eventTypes: readonly string[]): string {
  const ids =
    folders === 'all'
      ? ''
      : `<t:FolderIds>${folders.map((f) => (f.length > 20 ? `<t:FolderId Id="${f}"/>` : `<t:DistinguishedFolderId Id="${f}"/>`)).join('')}</t:FolderIds>`;
  return `${ids}<t:EventTypes>${eventTypes.map((e) => `<t:EventType>${e}</t:EventType>`).join('')}</t:EventTypes>`;
}

export const req = {
  subscribeStreaming(options: { folders?: readonly string[] | 'all'; eventTypes?: readonly string[] } = {}): string {
    const all = options.folders === 'all' ? ' SubscribeToAllFolders="true"' : '';
    return `<m:Subscribe><m:StreamingSubscriptionRequest${all}>${scope(options.folders ?? ['inbox'], options.eventTypes ?? ALL_EVENTS)}</m:StreamingSubscriptionRequest></m:Subscribe>`;
  },
  subscribePull(options: { folders?: readonly string[] | 'all'; eventTypes?: readonly string[]; timeout?: number; watermark?: string } = {}): string {
    const all = options.folders === 'all' ? ' SubscribeToAllFolders="true"' : '';
    const wm = options.watermark === undefined ? '' : `<t:Watermark>${options.watermark}</t:Watermark>`;
    return `<m:Subscribe><m:PullSubscriptionRequest${all}>${scope(options.folders ?? ['inbox'], options.eventTypes ?? ALL_EVENTS)}${wm}<t:Timeout>${options.timeout ?? 10}</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`;
  },
  subscribePush(options: { url: string; statusFrequency?: number; folders?: readonly string[]; eventTypes?: readonly string[] }): string {
    return `<m:Subscribe><m:PushSubscriptionRequest>${scope(options.folders ?? ['inbox'], options.eventTypes ?? ALL_EVENTS)}<t:StatusFrequency>${options.statusFrequency ?? 1}</t:StatusFrequency><t:URL>${options.url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>`;
  },
  getStreamingEvents(ids: readonly string[], timeoutMinutes = 30): string {
    return `<m:GetStreamingEvents><m:SubscriptionIds>${ids.map((id) => `<t:SubscriptionId>${id}</t:SubscriptionId>`).join('')}</m:SubscriptionIds><m:ConnectionTimeout>${timeoutMinutes}</m:ConnectionTimeout></m:GetStreamingEvents>`;
  },
  getEvents(id: string, watermark: string): string {
    return `<m:GetEvents><m:SubscriptionId>${id}</m:SubscriptionId><m:Watermark>${watermark}</m:Watermark></m:GetEvents>`;
  },
  unsubscribe(id: string): string {
    return `<m:Unsubscribe><m:SubscriptionId>${id}</m:SubscriptionId></m:Unsubscribe>`;
  },
  syncFolderItems(options: { folder?: string; syncState?: string; max?: number } = {}): string {
    const state = options.syncState === undefined ? '' : `<m:SyncState>${options.syncState}</m:SyncState>`;
    return `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="${options.folder ?? 'inbox'}"/></m:SyncFolderId>${state}<m:MaxChangesReturned>${options.max ?? 512}</m:MaxChangesReturned></m:SyncFolderItems>`;
  },
};

/** A plain HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Header lines as received (name, value, name, value…), to see repeated headers separately. */
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

/** Every value of a (possibly repeated) header line, as received. */
export function headerLines(answer: HttpAnswer, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) if (answer.rawHeaders[i]!.toLowerCase() === name.toLowerCase()) out.push(answer.rawHeaders[i + 1]!);
  return out;
}

/** Options of {@link post}. */
export interface PostOptions {
  /** `Authorization` header; default Basic alice@contoso.com. `null` sends none. */
  readonly auth?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  readonly agent?: Agent;
}

/** POSTs a body and reads the whole answer. */
export function post(url: string, body: string, options: PostOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const auth = options.auth === undefined ? basic('alice@contoso.com') : options.auth;
    const r = request(url, {
      method: 'POST',
      ...(options.agent ? { agent: options.agent } : {}),
      headers: { 'Content-Type': 'text/xml; charset=utf-8', ...(auth === null ? {} : { Authorization: auth }), ...options.headers },
    });
    r.on('error', reject);
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
    });
    r.end(body);
  });
}

/** POSTs a SOAP request built from a body element (and header) and parses the answer. */
export async function call(url: string, body: string, options: PostOptions & { header?: string } = {}): Promise<{ answer: HttpAnswer; envelope: EwsEnvelope }> {
  const answer = await post(url, envelope(body, options.header), options);
  const parser = new EnvelopeParser({ httpStatus: answer.status });
  const envelopes = [...parser.write(Buffer.from(answer.body)), ...parser.end()];
  if (envelopes.length !== 1) throw new Error(`expected one envelope, got ${envelopes.length}: ${answer.body}`);
  return { answer, envelope: envelopes[0]! };
}

/** The first response message of an envelope (throws for a fault). */
export function firstMessage(env: EwsEnvelope): ResponseMessage {
  if (env.body.type !== 'response') throw new Error(`expected a response, got ${JSON.stringify(env.body)}`);
  const message = env.body.messages[0];
  if (!message) throw new Error('no response message');
  return message;
}

/** An open GetStreamingEvents response, read envelope by envelope. */
export class StreamReader {
  readonly envelopes: EwsEnvelope[] = [];
  /** `performance.now()` when each envelope of `envelopes` arrived (same index). */
  readonly arrivedAt: number[] = [];
  readonly chunks: Buffer[] = [];
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** Set when the response ended (cleanly or not). */
  ended = false;
  /** A parse error or socket error, if the stream broke. */
  error: Error | undefined;
  private readonly parser = new EnvelopeParser();
  private waiters: Array<() => void> = [];
  private readonly done: Promise<void>;
  private cancel: () => void = () => {};

  /** `xml`: the whole request document. */
  constructor(url: string, xml: string, options: PostOptions = {}) {
    this.done = new Promise((resolve) => {
      const auth = options.auth === undefined ? basic('alice@contoso.com') : options.auth;
      const r = request(url, {
        method: 'POST',
        agent: options.agent ?? false,
        headers: { 'Content-Type': 'text/xml; charset=utf-8', ...(auth === null ? {} : { Authorization: auth }), ...options.headers },
      });
      this.cancel = () => r.destroy();
      const finish = (err?: Error): void => {
        if (this.ended) return;
        if (err && !this.error) this.error = err;
        this.ended = true;
        this.notify();
        resolve();
      };
      r.on('error', (err) => finish(err));
      r.on('response', (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.on('data', (c: Buffer) => {
          this.chunks.push(c);
          if (this.error) return;
          try {
            const now = performance.now();
            for (const envelope of this.parser.write(c)) {
              this.envelopes.push(envelope);
              this.arrivedAt.push(now);
            }
          } catch (err) {
            this.error = err as Error;
          }
          this.notify();
        });
        res.on('error', (err) => finish(err));
        res.on('close', () => {
          if (!res.complete) return finish(new Error('response cut short'));
          if (!this.error) {
            try {
              const now = performance.now();
              for (const envelope of this.parser.end()) {
                this.envelopes.push(envelope);
                this.arrivedAt.push(now);
              }
            } catch (err) {
              this.error = err as Error;
            }
          }
          finish();
        });
      });
      r.end(xml);
    });
  }

  /** The raw bytes received so far, as text. */
  get raw(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits until `predicate` holds over the envelopes received (or the stream ends; then throws).
   * Woken by each chunk, not polled; `timeoutMs` is a hang guard (default HANG_GUARD_MS of ./until.ts), not a speed bound.
   */
  async waitFor(predicate: (envelopes: readonly EwsEnvelope[]) => boolean, what = 'condition', timeoutMs = HANG_GUARD_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.envelopes)) {
      if (this.ended) throw new Error(`stream ended before ${what}: ${this.error?.message ?? 'clean end'}\n${this.raw}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.raw}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the response to end (`timeoutMs`: a hang guard, default HANG_GUARD_MS). */
  async finished(timeoutMs = HANG_GUARD_MS): Promise<void> {
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.done, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`stream did not end\n${this.raw}`)), timeoutMs)))]);
    clearTimeout(t);
  }

  /** Destroys the request (the client hangs up). */
  abort(): void {
    this.cancel();
  }

  /** All streaming messages received so far, flattened. */
  get messages(): Array<Extract<ResponseMessage, { kind: 'GetStreamingEvents' }>> {
    return this.envelopes.flatMap((e) => (e.body.type === 'response' ? e.body.messages : [])).filter((m): m is Extract<ResponseMessage, { kind: 'GetStreamingEvents' }> => m.kind === 'GetStreamingEvents');
  }
}

/** Opens a GetStreamingEvents stream (`header`: the SOAP header elements, as in {@link envelope}). */
export function openStream(url: string, ids: readonly string[], options: PostOptions & { timeoutMinutes?: number; header?: string } = {}): StreamReader {
  return new StreamReader(url, envelope(req.getStreamingEvents(ids, options.timeoutMinutes ?? 30), options.header), options);
}
