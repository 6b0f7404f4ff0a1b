/**
 * {@link EwsSimulator}: a protocol-faithful Exchange Web Services endpoint on 127.0.0.1 for tests —
 * real HTTP, real chunked streaming, real SOAP — with mailboxes you can make events happen in, and
 * the failures of production on demand.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../logger.js';
import { EVENT_TYPES } from '../model.js';
import { Authenticator, type NtlmLogonDetails, type Principal } from './auth.js';
import { AutodiscoverResponder } from './autodiscover.js';
import type { DeliveredEvent, SimulatedEvent } from './events.js';
import { FaultBook, isServerAction, validateFault, type CallFault, type FaultSpec, type ServerAction } from './faults.js';
import { decodeWatermark, subscriptionIdFor } from './ids.js';
import { MailboxStore, type Mailbox } from './mailbox-store.js';
import { resolveOptions, type EwsSimulatorOptions, type ResolvedOptions } from './options.js';
import { Output } from './output.js';
import { getEvents } from './pull.js';
import { PushDelivery, type PushAttempt } from './push.js';
import {
  readRequest,
  type EwsRequest,
  type GetEventsRequest,
  type GetStreamingEventsRequest,
  type SimulatedOperation,
  type SubscribeRequest,
  type SyncFolderItemsRequest,
  type UnsubscribeRequest,
} from './request-reader.js';
import {
  escapeXml,
  faultEnvelope,
  NO_ERROR,
  notificationXml,
  responseEnvelope,
  responseMessage,
  streamingEnvelope,
  streamingMessage,
  type MessageStatus,
} from './response-writer.js';
import { StreamingConnection } from './streaming.js';
import { Subscription, type SubscriptionInfo } from './subscriptions.js';
import { syncFolderItems } from './sync.js';
import { TimerSet } from './timers.js';

/** The EWS endpoint path, as on Exchange. */
export const EWS_PATH = '/EWS/Exchange.asmx';

/** One request the simulator received, for assertions. */
export interface RecordedRequest {
  /** When it arrived. */
  readonly at: Date;
  /** The operation (the SOAP body element's name), when the body could be read that far. */
  readonly operation: string | undefined;
  /** HTTP request headers, lower-cased names; the credentials in `authorization` are replaced by `[redacted]`. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw request body. */
  readonly body: string;
  /** The request as the simulator read it (only for requests that passed validation). */
  readonly request: EwsRequest | undefined;
  /** The authenticated user, when authentication succeeded. */
  readonly user: string | undefined;
  /** The scheme that authenticated the request (`NTLM` also for NTLM inside Negotiate), when it succeeded. */
  readonly authScheme?: Principal['scheme'];
  /** For an NTLM logon: whether a MIC came, and the channel binding the client sent. */
  readonly ntlm?: NtlmLogonDetails;
  /** The mailbox the call was for (impersonated or the user's own), once resolved. */
  readonly mailbox: string | undefined;
  /** The HTTP status answered (200 for a streaming response that opened). */
  readonly status: number | undefined;
  /** The call fault that was applied, if any. */
  readonly fault: CallFault['type'] | undefined;
}

type MutableRecord = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

/** A SOAP fault to answer with (HTTP 500). */
class FaultAnswer {
  constructor(
    readonly code: string,
    readonly text: string,
    readonly detail: ReadonlyArray<readonly [string, string]> = [],
  ) {}
}

/**
 * The request headers as recorded: the credential part of `Authorization` is replaced, so a test
 * that prints `sim.requests` cannot leak a password or token (the scheme stays, for assertions).
 */
function redactCredentials(headers: IncomingHttpHeaders): Record<string, string | readonly string[] | undefined> {
  const copy: Record<string, string | readonly string[] | undefined> = { ...headers };
  const auth = headers.authorization;
  if (auth !== undefined) copy['authorization'] = `${auth.split(' ')[0] ?? ''} [redacted]`;
  return copy;
}

/** The IIS-style HTML page a proxy or a broken front end returns. */
function htmlErrorPage(status: number): string {
  return (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n' +
    `<html xmlns="http://www.w3.org/1999/xhtml"><head><title>${status} - Server Error</title></head>` +
    `<body><div id="header"><h1>Server Error</h1></div><div id="content"><fieldset><h2>${status} - Internal server error.</h2>` +
    '<h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3></fieldset></div></body></html>'
  );
}

/** The host part of the simulator's URL: a wildcard address is reached through loopback; IPv6 in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * An Exchange Web Services server on 127.0.0.1 that behaves like Exchange 2016 for the operations a
 * notification client uses: Subscribe (streaming, pull, push), GetStreamingEvents, GetEvents,
 * Unsubscribe and SyncFolderItems.
 *
 * @example
 * ```ts
 * const sim = await EwsSimulator.start({ timeScale: 0.001 });
 * // point your client at sim.url with any Basic credentials, e.g. alice@contoso.com
 * const delivered = sim.deliver('alice@contoso.com', { type: 'NewMail' });
 * // …your client receives a NewMailEvent; sequenceOf(event) === delivered.seq
 * await sim.close();
 * ```
 */
export class EwsSimulator {
  /** The EWS endpoint, e.g. `http://127.0.0.1:PORT/EWS/Exchange.asmx`. */
  readonly url: string;

  private readonly options: ResolvedOptions;
  private readonly server: Server;
  private readonly log: Logger;
  private readonly store: MailboxStore;
  private readonly auth: Authenticator;
  private readonly autodiscover: AutodiscoverResponder | undefined;
  private readonly faults = new FaultBook();
  private readonly timers = new TimerSet();
  private readonly subs = new Map<string, Subscription>();
  /** Subscriptions per owner, kept with `subs` (counting them per Subscribe made 10,000 Subscribes quadratic). */
  private readonly ownedBy = new Map<string, number>();
  private readonly expired = new Set<string>();
  private readonly connections = new Set<StreamingConnection>();
  private readonly sockets = new Set<Socket>();
  private readonly recorded: MutableRecord[] = [];
  private readonly push: PushDelivery;
  private nextSubscriptionNo = 1;
  private closing: Promise<void> | undefined;

  private constructor(server: Server, options: ResolvedOptions) {
    this.server = server;
    this.options = options;
    this.log = options.logger;
    this.store = new MailboxStore(options.serverId);
    for (const address of options.mailboxes) this.store.get(address, true);
    this.auth = new Authenticator({
      schemes: options.authSchemes,
      users: options.users,
      verifyToken: options.verifyToken,
      extendedProtection: options.extendedProtection,
      ...(options.acceptNegotiate === undefined ? {} : { acceptNegotiate: options.acceptNegotiate }),
    });
    const { port } = server.address() as AddressInfo;
    this.url = `${options.tls ? 'https' : 'http'}://${urlHost(options.host)}:${port}${EWS_PATH}`;
    this.autodiscover = options.autodiscover === false ? undefined : new AutodiscoverResponder(options.autodiscover, () => this.url);
    this.push = new PushDelivery({
      timers: this.timers,
      timeScale: options.timeScale,
      logger: this.log,
      drop: (sub) => this.removeSubscription(sub),
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // Never let a socket-level error become an uncaught exception in the test process.
    server.on('error', (err: Error) => this.log.error('EwsSimulator: server error', { error: err.message }));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      res.on('error', (err: Error) => this.log.debug('EwsSimulator: response error', { error: err.message }));
      this.handle(req, res).catch((err: unknown) => {
        this.log.error('EwsSimulator: request failed', { error: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('Internal simulator error');
        } else {
          res.destroy();
        }
      });
    });
  }

  /**
   * Starts a simulator on `host` (default 127.0.0.1) and `port` (default 0: a free one).
   * @throws RangeError / TypeError naming the option when an option is invalid
   */
  static async start(options: EwsSimulatorOptions = {}): Promise<EwsSimulator> {
    const resolved = resolveOptions(options);
    const server: Server = resolved.tls
      ? createHttpsServer({ keepAliveTimeout: 5_000, key: resolved.tls.key, cert: resolved.tls.cert })
      : createServer({ keepAliveTimeout: 5_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(resolved.port, resolved.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new EwsSimulator(server, resolved);
  }

  /** Every request received so far (the last `maxRecordedRequests`), oldest first (a copy). */
  get requests(): readonly RecordedRequest[] {
    return [...this.recorded];
  }

  /** Live subscriptions (snapshots). */
  get subscriptions(): readonly SubscriptionInfo[] {
    return [...this.subs.values()].map((s) => s.info());
  }

  /** Every POST made to push listeners so far, oldest first (a copy). */
  get pushAttempts(): readonly PushAttempt[] {
    return [...this.push.attempts];
  }

  /** Open GetStreamingEvents connections. */
  get openStreamingConnections(): number {
    return this.connections.size;
  }

  /** Timers the simulator has pending (0 after `close()`). */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Makes an event happen in a mailbox (created if missing) and hands it to every subscription that
   * watches it: streaming connections get it at once, push listeners get a POST, pull subscribers on
   * their next GetEvents.
   * @returns the event as stored, with its per-mailbox sequence number `seq`
   * @throws TypeError for an event the simulator cannot make sense of
   */
  deliver(mailbox: string, event: SimulatedEvent): DeliveredEvent {
    if (!event || !(EVENT_TYPES as readonly string[]).includes(event.type)) throw new TypeError(`deliver: unknown event type ${JSON.stringify(event?.type)}`);
    if ((event.type === 'Moved' || event.type === 'Copied') && (typeof event.from !== 'string' || typeof event.to !== 'string')) {
      throw new TypeError(`deliver: a ${event.type} event needs 'from' and 'to' folders`);
    }
    if (typeof mailbox !== 'string' || mailbox.trim() === '') throw new TypeError('deliver: mailbox must be a non-empty string');
    const box = this.store.get(mailbox, true)!;
    const delivered = box.apply(event);
    for (const sub of this.subs.values()) {
      if (sub.mailbox !== box) continue;
      if (sub.kind === 'streaming' && sub.connection instanceof StreamingConnection) sub.connection.scheduleFlush();
      else if (sub.kind === 'push') this.push.wake(sub);
    }
    return delivered;
  }

  /** The id of a folder of a mailbox (distinguished name or custom display name), e.g. to subscribe by FolderId. */
  folderId(mailbox: string, folder: string): string {
    return this.store.get(mailbox, true)!.folder(folder, true)!.id;
  }

  /** The events delivered to a mailbox so far, oldest first. */
  events(mailbox: string): readonly DeliveredEvent[] {
    return [...(this.store.get(mailbox, false)?.events ?? [])];
  }

  /**
   * Injects a fault (see {@link FaultSpec} for what each does). Call faults wait for the calls they
   * match; server actions happen at once.
   * @throws RangeError for a malformed spec
   */
  inject(fault: FaultSpec): void {
    validateFault(fault);
    if (isServerAction(fault)) this.act(fault);
    else this.faults.add(fault);
  }

  /** Disarms every call fault that has not been used up. */
  clearFaults(): void {
    this.faults.clear();
  }

  /** Ends every open streaming connection now with `ConnectionStatus Closed`, as Exchange does at its timeout. */
  forceClose(): void {
    for (const connection of [...this.connections]) connection.close(true);
  }

  /**
   * Stops the simulator: ends every stream with `Closed`, stops push delivery, closes the server and
   * every socket, and clears every timer. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const finished = [...this.connections].map((c) => c.finished);
    this.forceClose();
    await this.push.close();
    // Give the Closed envelopes a moment to leave before the sockets go.
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(finished), new Promise<void>((resolve) => (grace = setTimeout(resolve, 500)))]);
    clearTimeout(grace);
    this.timers.close();
    for (const connection of [...this.connections]) connection.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    for (const socket of this.sockets) socket.destroy();
    this.subs.clear();
    this.ownedBy.clear();
  }

  private act(action: ServerAction): void {
    const ids = action.subscriptionIds ? new Set(action.subscriptionIds) : undefined;
    const mailbox = action.mailbox?.toLowerCase();
    const selected = [...this.subs.values()].filter((s) => (!ids || ids.has(s.id)) && (!mailbox || s.mailbox.address === mailbox));
    for (const sub of selected) {
      if (action.type === 'forget-subscriptions') {
        this.log.debug('EwsSimulator: forgetting subscription', { subscriptionId: sub.id });
        this.removeSubscription(sub, 'ErrorSubscriptionNotFound');
      } else {
        sub.droppedUpTo = sub.mailbox.seq;
        if (sub.kind !== 'pull') sub.cursor = sub.mailbox.seq;
        sub.missedPending = true;
        if (sub.connection instanceof StreamingConnection) sub.connection.scheduleFlush();
        if (sub.kind === 'push') this.push.wake(sub);
      }
    }
  }

  private removeSubscription(sub: Subscription, streamingCode?: string): void {
    if (this.subs.delete(sub.id)) this.ownedBy.set(sub.owner, (this.ownedBy.get(sub.owner) ?? 1) - 1);
    this.timers.clear(sub.timer);
    sub.timer = undefined;
    sub.connection?.detach(sub, streamingCode);
    this.push.stop(sub);
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  /** Autodiscover requests answered so far, by protocol (authenticated ones only). */
  get autodiscoverRequests(): { readonly soap: number; readonly pox: number } {
    return { ...(this.autodiscover?.counts ?? { soap: 0, pox: 0 }) };
  }

  private async handleAutodiscover(responder: AutodiscoverResponder, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('Method Not Allowed');
      return;
    }
    const body = await this.readBody(req);
    if (body === undefined) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Request Entity Too Large');
      return;
    }
    const auth = await this.auth.authenticate(req);
    if (!auth.ok) {
      res.writeHead(401, { 'WWW-Authenticate': this.auth.challenges(auth.ntlmChallenge, auth.scheme), 'Content-Length': '0' }).end();
      return;
    }
    responder.answer(path, body, res);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (this.autodiscover?.matches(path)) return this.handleAutodiscover(this.autodiscover, path, req, res);
    if (path.toLowerCase() !== EWS_PATH.toLowerCase()) {
      res.writeHead(404, { 'Content-Type': 'text/html' }).end(htmlErrorPage(404));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('Method Not Allowed');
      return;
    }
    if (this.closing) {
      res.writeHead(503, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Shutting down');
      return;
    }
    const body = await this.readBody(req);
    if (body === undefined) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Request Entity Too Large');
      return;
    }
    const record: MutableRecord = {
      at: new Date(),
      operation: undefined,
      headers: redactCredentials(req.headers),
      body,
      request: undefined,
      user: undefined,
      mailbox: undefined,
      status: undefined,
      fault: undefined,
    };
    this.recorded.push(record);
    if (this.recorded.length > this.options.maxRecordedRequests) this.recorded.splice(0, this.recorded.length - this.options.maxRecordedRequests);

    const auth = await this.auth.authenticate(req);
    if (!auth.ok) {
      record.status = 401;
      res.writeHead(401, { 'WWW-Authenticate': this.auth.challenges(auth.ntlmChallenge, auth.scheme), 'Content-Length': '0' }).end();
      return;
    }
    record.user = auth.principal.user;
    record.authScheme = auth.principal.scheme;
    if (auth.principal.ntlm) record.ntlm = auth.principal.ntlm;
    if (auth.negotiateResponse !== undefined) res.setHeader('WWW-Authenticate', `Negotiate ${auth.negotiateResponse}`);

    const read = readRequest(body);
    if (!read.ok) {
      record.operation = read.operation;
      if (read.kind === 'unsupported') {
        this.sendFault(res, record, new FaultAnswer('ErrorInvalidRequest', `The request is invalid: ${read.violations.join(' ')}`));
      } else {
        this.sendSchemaFault(res, record, read.violations);
      }
      return;
    }
    const request = read.request;
    record.operation = request.operation;
    if (this.options.validateRequest) {
      let problems: readonly string[] | undefined;
      try {
        problems = await this.options.validateRequest(body);
      } catch (err) {
        this.log.error('EwsSimulator: validateRequest threw', { error: err instanceof Error ? err.message : String(err) });
        this.sendFault(res, record, new FaultAnswer('ErrorInternalServerError', 'An internal server error occurred. The operation failed.'));
        return;
      }
      if (problems && problems.length > 0) {
        this.sendSchemaFault(res, record, problems);
        return;
      }
    }
    record.request = request;

    const target = this.resolveMailbox(auth.principal, request);
    if (target instanceof FaultAnswer) {
      this.sendFault(res, record, target);
      return;
    }
    record.mailbox = target.address;

    const fault = this.faults.take('request', request.operation, target.address);
    record.fault = fault?.type;
    if (fault && this.answerWithFault(res, record, fault)) return;

    switch (request.operation) {
      case 'Subscribe':
        return this.subscribe(res, record, fault, request, auth.principal, target, req);
      case 'GetEvents':
        return this.getEvents(res, record, fault, request, auth.principal, req);
      case 'GetStreamingEvents':
        return this.getStreamingEvents(res, record, fault, request, auth.principal, target, req);
      case 'Unsubscribe':
        return this.unsubscribe(res, record, fault, request, auth.principal, req);
      case 'SyncFolderItems':
        return this.syncFolderItems(res, record, fault, request, target);
    }
  }

  private readBody(req: IncomingMessage): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.options.maxRequestBytes) tooLarge = true;
        else chunks.push(chunk);
      });
      req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  /** Answers with a request-level fault; `false` for faults that shape the normal answer instead. */
  private answerWithFault(res: ServerResponse, record: MutableRecord, fault: CallFault): boolean {
    switch (fault.type) {
      case 'server-busy':
        record.status = 500;
        this.write(
          res,
          500,
          faultEnvelope('ErrorServerBusy', 'The server cannot service this request right now. Try again later.', {
            messageXml: { BackOffMilliseconds: String(Math.round(fault.backOffMs)) },
          }),
          undefined,
        );
        return true;
      case 'http-503':
        record.status = 503;
        res
          .writeHead(503, {
            'Content-Type': 'text/html',
            ...(fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(Math.round(fault.retryAfterSeconds)) }),
          })
          .end(htmlErrorPage(503));
        return true;
      case 'http-401':
        record.status = 401;
        res.writeHead(401, { 'WWW-Authenticate': this.auth.challenges(), 'Content-Length': '0' }).end();
        return true;
      case 'html-error-page': {
        const status = fault.status ?? 500;
        record.status = status;
        res.writeHead(status, { 'Content-Type': 'text/html' }).end(htmlErrorPage(status));
        return true;
      }
      default:
        return false;
    }
  }

  /** Writes a whole response body, with any byte-level fault (trickle, silence, cut, malformed) applied. */
  private write(res: ServerResponse, status: number, body: string, fault: CallFault | undefined, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', ...headers });
    const trickle = fault?.type === 'trickle' ? { bytesPerWrite: fault.bytesPerWrite ?? 1, intervalMs: fault.intervalMs ?? 1 } : undefined;
    const out = new Output(res, this.timers, trickle);
    if (fault?.type === 'silence') out.silence(fault.forMs);
    out.write(body, fault?.type === 'cut-mid-envelope' ? 'cut' : fault?.type === 'malformed-xml' ? 'malformed' : undefined);
    out.end();
  }

  private sendFault(res: ServerResponse, record: MutableRecord, fault: FaultAnswer): void {
    record.status = 500;
    this.write(res, 500, faultEnvelope(fault.code, fault.text, { detail: fault.detail }), undefined);
  }

  private sendSchemaFault(res: ServerResponse, record: MutableRecord, violations: readonly string[]): void {
    const first = violations[0] ?? 'The request is not valid.';
    this.sendFault(
      res,
      record,
      // Exchange also writes e:Line and e:Position; the reader does not track positions, so they are left out.
      new FaultAnswer('ErrorSchemaValidation', `The request failed schema validation: ${first}`, [['Violation', violations.join(' ')]]),
    );
  }

  private respond(res: ServerResponse, record: MutableRecord, fault: CallFault | undefined, operation: SimulatedOperation, message: string, headers?: Record<string, string>): void {
    record.status = 200;
    this.write(res, 200, responseEnvelope(operation, [message]), fault, headers);
  }

  // ---------------------------------------------------------------------------------------------
  // Identity

  private resolveMailbox(principal: Principal, request: EwsRequest): Mailbox | FaultAnswer {
    const impersonation = request.header.impersonation;
    let address: string;
    if (impersonation) {
      address = impersonation.value.trim().toLowerCase();
      const rights = this.options.impersonation;
      if (rights) {
        const granted = Object.entries(rights).find(([caller]) => caller.toLowerCase() === principal.user.toLowerCase())?.[1];
        const allowed = granted === '*' || (granted !== undefined && granted.some((a) => a.toLowerCase() === address));
        if (!allowed) return new FaultAnswer('ErrorImpersonateUserDenied', 'The account does not have permission to impersonate the requested user.');
      }
    } else if (principal.appOnly) {
      return new FaultAnswer('ErrorInvalidExchangeImpersonationHeaderData', 'ExchangeImpersonation SOAP header must be present for this type of OAuth token.');
    } else {
      address = principal.user.toLowerCase();
    }
    const mailbox = this.store.get(address, this.options.autoCreateMailboxes);
    return mailbox ?? new FaultAnswer('ErrorNonExistentMailbox', `The SMTP address has no mailbox associated with it.`);
  }

  private backendCookieOf(req: IncomingMessage): string | undefined {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [name, ...rest] = part.trim().split('=');
      if (name?.toLowerCase() === 'x-backendoverridecookie') return rest.join('=');
    }
    return undefined;
  }

  /** Affinity mode: a call about a subscription must carry the cookie its anchored Subscribe set. */
  private reachable(sub: Subscription, req: IncomingMessage): boolean {
    if (!this.options.affinity) return true;
    return sub.extra.backendCookie !== undefined && this.backendCookieOf(req) === sub.extra.backendCookie;
  }

  private static backendFor(anchor: string): string {
    let hash = 0x811c9dc5;
    for (const ch of anchor.toLowerCase()) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return `SIM-MBX0${(hash % 3) + 1}.ews-simulator.local~${hash}`;
  }

  // ---------------------------------------------------------------------------------------------
  // Operations

  private subscribe(
    res: ServerResponse,
    record: MutableRecord,
    fault: CallFault | undefined,
    request: SubscribeRequest,
    principal: Principal,
    mailbox: Mailbox,
    req: IncomingMessage,
  ): void {
    const fail = (status: MessageStatus): void => this.respond(res, record, fault, 'Subscribe', responseMessage('SubscribeResponseMessage', status));
    if (request.subscribeToAllFolders === request.folders.length > 0) {
      return fail({
        code: 'ErrorInvalidSubscriptionRequest',
        text: request.subscribeToAllFolders ? 'FolderIds must not be given with SubscribeToAllFolders.' : 'FolderIds are required unless SubscribeToAllFolders is true.',
      });
    }
    const folderIds = new Set<string>();
    for (const folder of request.folders) {
      if ('distinguished' in folder) {
        if (folder.mailbox !== undefined && folder.mailbox.toLowerCase() !== mailbox.address) {
          return fail({ code: 'ErrorSubscriptionDelegateAccessNotSupported' });
        }
        folderIds.add(mailbox.folder(folder.distinguished, false)!.id);
      } else {
        const found = mailbox.folderById(folder.id);
        if (!found) return fail({ code: 'ErrorFolderNotFound' });
        folderIds.add(found.id);
      }
    }
    const owned = this.ownedBy.get(principal.user) ?? 0;
    if (owned >= this.options.maxSubscriptionsPerUser) return fail({ code: 'ErrorExceededSubscriptionCount' });
    let startSeq = mailbox.seq;
    if (request.watermark !== undefined) {
      const position = decodeWatermark(request.watermark);
      if (!position || position.serverId !== this.options.serverId || position.mailboxNo !== mailbox.no || position.seq > mailbox.seq) {
        return fail({ code: 'ErrorInvalidWatermark' });
      }
      startSeq = position.seq;
    }
    if (request.kind === 'push' && !/^https?:\/\/[^\s/]+/i.test(request.url ?? '')) return fail({ code: 'ErrorInvalidPushSubscriptionUrl' });

    const headers: Record<string, string> = {};
    let backendCookie: string | undefined;
    const anchor = req.headers['x-anchormailbox'];
    if (this.options.affinity && typeof anchor === 'string' && req.headers['x-preferserveraffinity']?.toString().toLowerCase() === 'true') {
      backendCookie = EwsSimulator.backendFor(anchor);
      headers['Set-Cookie'] = `X-BackEndOverrideCookie=${backendCookie}; path=/`;
    }
    const minuteMs = 60_000 * this.options.timeScale;
    const sub = new Subscription(
      subscriptionIdFor(this.options.serverId, this.nextSubscriptionNo++),
      request.kind,
      mailbox,
      principal.user,
      folderIds,
      request.subscribeToAllFolders,
      new Set(request.eventTypes),
      startSeq,
      {
        ...(request.kind === 'push' ? { url: request.url!, statusFrequencyMs: request.statusFrequencyMinutes! * minuteMs } : {}),
        ...(request.kind === 'pull' ? { timeoutMs: request.timeoutMinutes! * minuteMs } : {}),
        ...(backendCookie === undefined ? {} : { backendCookie }),
      },
    );
    this.subs.set(sub.id, sub);
    this.ownedBy.set(sub.owner, owned + 1);
    if (sub.kind === 'pull') this.armPullExpiry(sub);
    if (sub.kind === 'push') this.push.start(sub);
    const inner =
      `<m:SubscriptionId>${escapeXml(sub.id)}</m:SubscriptionId>` +
      (sub.kind === 'streaming' ? '' : `<m:Watermark>${escapeXml(mailbox.watermarkAt(startSeq))}</m:Watermark>`);
    this.respond(res, record, fault, 'Subscribe', responseMessage('SubscribeResponseMessage', NO_ERROR, inner), headers);
  }

  private armPullExpiry(sub: Subscription): void {
    this.timers.clear(sub.timer);
    sub.timer = this.timers.set(() => {
      sub.timer = undefined;
      this.log.debug('EwsSimulator: pull subscription expired', { subscriptionId: sub.id });
      this.expired.add(sub.id);
      this.removeSubscription(sub);
    }, sub.extra.timeoutMs ?? 0);
  }

  private getEvents(res: ServerResponse, record: MutableRecord, fault: CallFault | undefined, request: GetEventsRequest, principal: Principal, req: IncomingMessage): void {
    const reply = (status: MessageStatus, inner = ''): void =>
      this.respond(res, record, fault, 'GetEvents', responseMessage('GetEventsResponseMessage', status, inner));
    const sub = this.subs.get(request.subscriptionId);
    if (!sub || !this.reachable(sub, req)) {
      return reply({ code: this.expired.has(request.subscriptionId) ? 'ErrorExpiredSubscription' : 'ErrorSubscriptionNotFound' });
    }
    if (sub.kind !== 'pull') return reply({ code: 'ErrorInvalidPullSubscriptionId' });
    if (sub.owner !== principal.user) return reply({ code: 'ErrorSubscriptionAccessDenied' });
    this.armPullExpiry(sub);
    const answer = getEvents(sub, request.watermark, this.options.serverId);
    reply(answer.status, answer.notification ? notificationXml(answer.notification) : '');
  }

  private getStreamingEvents(
    res: ServerResponse,
    record: MutableRecord,
    fault: CallFault | undefined,
    request: GetStreamingEventsRequest,
    principal: Principal,
    mailbox: Mailbox,
    req: IncomingMessage,
  ): void {
    const valid: Subscription[] = [];
    const unknown: string[] = [];
    for (const id of new Set(request.subscriptionIds)) {
      const sub = this.subs.get(id);
      if (sub && sub.kind === 'streaming' && sub.owner === principal.user && this.reachable(sub, req)) valid.push(sub);
      else unknown.push(id);
    }
    const open = [...this.connections].filter((c) => c.open && c.mailbox === mailbox.address).length;
    if (valid.length > 0 && open >= this.options.maxStreamingConnectionsPerMailbox) {
      record.status = 200;
      this.write(res, 200, streamingEnvelope([streamingMessage({ code: 'ErrorExceededConnectionCount' }, {})]), fault);
      return;
    }
    record.status = 200;
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const trickle = fault?.type === 'trickle' ? { bytesPerWrite: fault.bytesPerWrite ?? 1, intervalMs: fault.intervalMs ?? 1 } : undefined;
    const out = new Output(res, this.timers, trickle);
    const connection = new StreamingConnection(out, res, {
      timers: this.timers,
      faults: this.faults,
      keepAliveIntervalMs: this.options.keepAliveIntervalMs,
      connectionGone: (c) => this.connections.delete(c),
    }, mailbox.address, request.connectionTimeoutMinutes * 60_000 * this.options.timeScale);
    this.connections.add(connection);
    connection.start(valid, unknown);
  }

  private unsubscribe(res: ServerResponse, record: MutableRecord, fault: CallFault | undefined, request: UnsubscribeRequest, principal: Principal, req: IncomingMessage): void {
    const sub = this.subs.get(request.subscriptionId);
    let status: MessageStatus = NO_ERROR;
    if (!sub || !this.reachable(sub, req)) status = { code: 'ErrorSubscriptionNotFound' };
    else if (sub.owner !== principal.user) status = { code: 'ErrorSubscriptionAccessDenied' };
    else this.removeSubscription(sub);
    this.respond(res, record, fault, 'Unsubscribe', responseMessage('UnsubscribeResponseMessage', status));
  }

  private syncFolderItems(res: ServerResponse, record: MutableRecord, fault: CallFault | undefined, request: SyncFolderItemsRequest, mailbox: Mailbox): void {
    const answer =
      fault?.type === 'invalid-sync-state' && request.syncState !== undefined
        ? { status: { code: 'ErrorInvalidSyncStateData' }, inner: '' }
        : syncFolderItems(mailbox, request, this.options.serverId);
    this.respond(res, record, fault, 'SyncFolderItems', responseMessage('SyncFolderItemsResponseMessage', answer.status, answer.inner));
  }
}
