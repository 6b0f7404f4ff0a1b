/**
 * Autodiscover: where a mailbox's EWS endpoint is, and which mailbox server it lives on
 * (`GroupingInformation`), so mailboxes of one server can share a `StreamingGroup`.
 *
 * SOAP `GetUserSettings` (Exchange 2010+, `/autodiscover/autodiscover.svc`, up to 100 mailboxes a
 * request) first, the POX protocol (`/autodiscover/autodiscover.xml`, one mailbox a request, no
 * GroupingInformation) as the fallback. Redirects — HTTP 3xx, `RedirectUrl`, `RedirectAddress`, POX
 * `redirectUrl`/`redirectAddr` — are followed under safety limits, because an Autodiscover answer
 * decides where the bridge sends its credentials:
 *
 * - HTTPS only (`allowHttp: true` exists for tests against a local simulator);
 * - at most `maxRedirects` hops per mailbox (default 10), and never the same endpoint twice for
 *   the same address;
 * - a redirect to another domain (a host outside the mailbox's domain, or an address in another
 *   domain) is followed only when `approveRedirect` says yes; without it, it is refused.
 */
import { EwsAutodiscoverError, EwsBridgeError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { readXmlTree, type XmlElement } from './xml-tree.js';
import type { EwsAuth } from './auth-header.js';
import { postXml, type RawXmlResponse } from './transport.js';
import { escapeText } from './xml.js';
import { describeValue, intInRange, oneOf, requireObject } from '../validate.js';
import type http from 'node:http';

const AUTODISCOVER_NS = 'http://schemas.microsoft.com/exchange/2010/Autodiscover';
const SOAP_ACTION = 'http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings';
const POX_REQUEST_NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';
const POX_RESPONSE_SCHEMA = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
/** GetUserSettings takes at most 100 users a request. */
const MAX_USERS_PER_REQUEST = 100;

/** A redirect that needs the caller's approval (it leaves the mailbox's domain). */
export interface AutodiscoverRedirect {
  /** The mailbox being discovered (as first asked). */
  readonly mailbox: string;
  /** The endpoint that answered with the redirect. */
  readonly from: URL;
  /** Where it points: an Autodiscover URL, or (for an address redirect) the new address. */
  readonly to: URL | string;
}

/** Options of {@link autodiscover}. */
export interface AutodiscoverOptions {
  /** SMTP addresses to look up. Required, at least one. */
  readonly mailboxes: readonly string[];
  /** Credentials for the Autodiscover service (the same account as for EWS). Default `{ type: 'none' }`. */
  readonly auth?: EwsAuth;
  /**
   * The Autodiscover endpoint to ask first: a SOAP URL (`…/autodiscover.svc`) or a POX URL
   * (`…/autodiscover.xml`); a SOAP URL is followed by the POX URL beside it, for servers without
   * the SOAP service. Default: for each mailbox's domain D, the SOAP then POX endpoints of
   * `https://D` and `https://autodiscover.D` (no DNS SRV lookup, no plain-http probe).
   */
  readonly url?: string | URL;
  /** Which EWS URL to return when the server gives both. Default `'external'` (as Outlook and the EWS Managed API). */
  readonly prefer?: 'external' | 'internal';
  /** Most redirects followed per mailbox. Default 10. */
  readonly maxRedirects?: number;
  /** Allow plain-http Autodiscover endpoints and redirects: for tests against a local simulator only. Default `false`. */
  readonly allowHttp?: boolean;
  /**
   * Asked before following a redirect to another domain; resolve `true` to follow it. Default:
   * such redirects are refused (the mailbox fails with `EWS_AUTODISCOVER_FAILED`).
   */
  readonly approveRedirect?: (redirect: AutodiscoverRedirect) => boolean | Promise<boolean>;
  /** Connection pool (TLS settings go on it, see `createEwsAgent`). Default: a shared keep-alive agent. */
  readonly agent?: http.Agent;
  /** Per request. Default `30_000`. */
  readonly requestTimeoutMs?: number;
  /** Aborts the whole lookup. */
  readonly signal?: AbortSignal;
  /** Debug lines (endpoints tried, redirects). Default: silent. */
  readonly logger?: Logger;
}

/** What Autodiscover says about one mailbox. */
export interface AutodiscoverResult {
  /** The address asked about. */
  readonly mailbox: string;
  /** The EWS URL to use (per `prefer`, falling back to the other one). */
  readonly ewsUrl: string;
  /** The EWS URL for clients outside the organization's network, if the server gave one. */
  readonly externalEwsUrl: string | undefined;
  /** The EWS URL for clients inside the organization's network, if the server gave one. */
  readonly internalEwsUrl: string | undefined;
  /** Mailboxes with the same value (and EWS URL) share a mailbox server: one streaming group. SOAP only. */
  readonly groupingInformation: string | undefined;
  /** Which protocol answered. */
  readonly protocol: 'soap' | 'pox';
  /** Redirects followed to get here. */
  readonly redirects: number;
}

/** One mailbox's outcome. */
export type AutodiscoverOutcome = { readonly ok: true; readonly result: AutodiscoverResult } | { readonly ok: false; readonly mailbox: string; readonly error: EwsAutodiscoverError };

/** The domain part of an SMTP address, lower-cased. */
function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Whether `host` is `domain` or inside it. */
function withinDomain(host: string, domain: string): boolean {
  const h = host.toLowerCase();
  return h === domain || h.endsWith(`.${domain}`);
}

function defaultEndpoints(domain: string): URL[] {
  return [
    `https://${domain}/autodiscover/autodiscover.svc`,
    `https://autodiscover.${domain}/autodiscover/autodiscover.svc`,
    `https://${domain}/autodiscover/autodiscover.xml`,
    `https://autodiscover.${domain}/autodiscover/autodiscover.xml`,
  ].map((u) => new URL(u));
}

const isPox = (url: URL): boolean => url.pathname.toLowerCase().endsWith('.xml');

/** The endpoints for an explicit URL: it, then (for a SOAP URL) the POX endpoint beside it. */
function explicitEndpoints(value: string | URL): URL[] {
  const url = new URL(value);
  if (isPox(url) || !url.pathname.toLowerCase().endsWith('.svc')) return [url];
  const pox = new URL(url.href);
  pox.pathname = url.pathname.replace(/\.svc$/i, '.xml');
  return [url, pox];
}

/** The GetUserSettings request for some mailboxes. */
export function getUserSettingsRequest(url: URL, mailboxes: readonly string[]): string {
  const users = mailboxes.map((m) => `<a:User><a:Mailbox>${escapeText(m, 'mailbox')}</a:Mailbox></a:User>`).join('');
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="${AUTODISCOVER_NS}" xmlns:wsa="http://www.w3.org/2005/08/addressing">` +
    '<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>' +
    `<wsa:Action>${SOAP_ACTION}</wsa:Action><wsa:To>${escapeText(url.href, 'url')}</wsa:To></soap:Header>` +
    `<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>${users}</a:Users>` +
    '<a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting><a:Setting>GroupingInformation</a:Setting></a:RequestedSettings>' +
    '</a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>'
  );
}

/** The POX request for one mailbox. */
export function poxRequest(mailbox: string): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<Autodiscover xmlns="${POX_REQUEST_NS}"><Request><EMailAddress>${escapeText(mailbox, 'mailbox')}</EMailAddress>` +
    `<AcceptableResponseSchema>${POX_RESPONSE_SCHEMA}</AcceptableResponseSchema></Request></Autodiscover>`
  );
}

const child = (element: XmlElement | undefined, local: string): XmlElement | undefined => element?.children.find((c) => c.local === local);
const children = (element: XmlElement | undefined, local: string): XmlElement[] => element?.children.filter((c) => c.local === local) ?? [];
const textOf = (element: XmlElement | undefined, local: string): string | undefined => {
  const found = child(element, local);
  const text = found?.text.trim();
  return text === undefined || text === '' ? undefined : text;
};

/** One user's answer in a GetUserSettings response. */
export type UserSettingsAnswer =
  | { readonly kind: 'settings'; readonly settings: ReadonlyMap<string, string> }
  | { readonly kind: 'redirect-address'; readonly target: string }
  | { readonly kind: 'redirect-url'; readonly target: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/**
 * Parses a GetUserSettings response: one answer per user, in request order.
 *
 * @throws Error when the document is not a GetUserSettings response, or a request-level error.
 */
export function parseGetUserSettingsResponse(xml: string): UserSettingsAnswer[] {
  const root = readXmlTree(xml);
  const body = root.children.find((c) => c.local === 'Body');
  const message = body?.children.find((c) => c.local === 'GetUserSettingsResponseMessage' && c.ns === AUTODISCOVER_NS);
  const response = child(message, 'Response');
  if (response === undefined) throw new Error('not a GetUserSettings response');
  const code = textOf(response, 'ErrorCode') ?? 'NoError';
  if (code !== 'NoError') throw new Error(`Autodiscover answered ${code}: ${textOf(response, 'ErrorMessage') ?? ''}`.trim());
  return children(child(response, 'UserResponses'), 'UserResponse').map((user): UserSettingsAnswer => {
    const userCode = textOf(user, 'ErrorCode') ?? 'NoError';
    const target = textOf(user, 'RedirectTarget');
    if (userCode === 'RedirectAddress' && target !== undefined) return { kind: 'redirect-address', target };
    if (userCode === 'RedirectUrl' && target !== undefined) return { kind: 'redirect-url', target };
    if (userCode !== 'NoError') return { kind: 'error', code: userCode, message: textOf(user, 'ErrorMessage') ?? '' };
    const settings = new Map<string, string>();
    for (const setting of children(child(user, 'UserSettings'), 'UserSetting')) {
      const name = textOf(setting, 'Name');
      const value = textOf(setting, 'Value');
      if (name !== undefined && value !== undefined) settings.set(name, value);
    }
    return { kind: 'settings', settings };
  });
}

/** Parses a POX Autodiscover response into the same shape. @throws Error when it is not one. */
export function parsePoxResponse(xml: string): UserSettingsAnswer {
  const root = readXmlTree(xml);
  if (root.local !== 'Autodiscover') throw new Error('not a POX Autodiscover response');
  const response = child(root, 'Response');
  const error = child(response, 'Error');
  if (error !== undefined) return { kind: 'error', code: textOf(error, 'ErrorCode') ?? 'Error', message: textOf(error, 'Message') ?? '' };
  const account = child(response, 'Account');
  const action = textOf(account, 'Action');
  if (action === 'redirectAddr') return { kind: 'redirect-address', target: textOf(account, 'RedirectAddr') ?? '' };
  if (action === 'redirectUrl') return { kind: 'redirect-url', target: textOf(account, 'RedirectUrl') ?? '' };
  const settings = new Map<string, string>();
  for (const protocol of children(account, 'Protocol')) {
    const type = textOf(protocol, 'Type');
    const ewsUrl = textOf(protocol, 'EwsUrl');
    if (ewsUrl === undefined) continue;
    if (type === 'EXCH' && !settings.has('InternalEwsUrl')) settings.set('InternalEwsUrl', ewsUrl);
    if ((type === 'EXPR' || type === 'EXHTTP') && !settings.has('ExternalEwsUrl')) settings.set('ExternalEwsUrl', ewsUrl);
  }
  if (settings.size === 0) return { kind: 'error', code: 'NoEwsUrl', message: 'The POX answer names no EWS URL' };
  return { kind: 'settings', settings };
}

/** Errors that broke a safety rule: they end a lookup instead of moving on to the next endpoint. */
const POLICY_REFUSALS = new WeakSet<EwsAutodiscoverError>();

function refuse(lookup: { readonly asked: string }, message: string): EwsAutodiscoverError {
  const error = new EwsAutodiscoverError(lookup.asked, message, { retriable: false });
  POLICY_REFUSALS.add(error);
  return error;
}

interface Lookup {
  readonly asked: string;
  address: string;
  endpoints: URL[];
  redirects: number;
  readonly visited: Set<string>;
  lastError: EwsAutodiscoverError | undefined;
}

/** Safety and transport settings shared by every step of a lookup. */
interface Context {
  readonly options: AutodiscoverOptions;
  readonly maxRedirects: number;
  readonly logger: Logger;
}

function checkScheme(context: Context, lookup: Lookup, url: URL): void {
  if (url.protocol === 'https:' || (url.protocol === 'http:' && context.options.allowHttp === true)) return;
  throw refuse(lookup, `Autodiscover for ${lookup.asked} refused ${url.origin}: only https is allowed (allowHttp is for tests)`);
}

async function approve(context: Context, lookup: Lookup, from: URL, to: URL | string): Promise<void> {
  lookup.redirects++;
  if (lookup.redirects > context.maxRedirects) {
    throw refuse(lookup, `Autodiscover for ${lookup.asked} gave up after ${context.maxRedirects} redirects (maxRedirects)`);
  }
  const domain = domainOf(lookup.asked);
  const foreign = typeof to === 'string' ? domainOf(to) !== domain : !withinDomain(to.hostname, domain) && to.hostname !== from.hostname;
  if (!foreign) return;
  const target = typeof to === 'string' ? to : to.origin;
  const approved = context.options.approveRedirect ? await context.options.approveRedirect({ mailbox: lookup.asked, from, to }) : false;
  if (approved !== true) {
    throw refuse(lookup, `Autodiscover for ${lookup.asked} was redirected to another domain (${target}) and approveRedirect did not allow it`);
  }
}

function result(context: Context, lookup: Lookup, settings: ReadonlyMap<string, string>, protocol: 'soap' | 'pox'): AutodiscoverResult {
  const external = settings.get('ExternalEwsUrl');
  const internal = settings.get('InternalEwsUrl');
  const ewsUrl = context.options.prefer === 'internal' ? (internal ?? external) : (external ?? internal);
  if (ewsUrl === undefined) throw new EwsAutodiscoverError(lookup.asked, `Autodiscover for ${lookup.asked} returned no EWS URL`, { retriable: false });
  return {
    mailbox: lookup.asked,
    ewsUrl,
    externalEwsUrl: external,
    internalEwsUrl: internal,
    groupingInformation: settings.get('GroupingInformation'),
    protocol,
    redirects: lookup.redirects,
  };
}

async function post(context: Context, url: URL, pox: boolean, body: string): Promise<RawXmlResponse> {
  const { options } = context;
  context.logger.debug('Autodiscover request', { url: `${url.origin}${url.pathname}` });
  return postXml(
    { soapAction: pox ? '' : SOAP_ACTION, envelope: body },
    {
      url,
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      ...(options.agent === undefined ? {} : { agent: options.agent }),
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      logger: context.logger,
    },
  );
}

/**
 * One answer for one lookup from one endpoint: a result, a redirect applied to the lookup
 * (`undefined`: ask again), or an error to remember before trying the next endpoint.
 */
async function step(context: Context, lookup: Lookup, url: URL, answers?: Map<string, UserSettingsAnswer>): Promise<AutodiscoverResult | undefined> {
  checkScheme(context, lookup, url);
  const key = `${url.href}\n${lookup.address.toLowerCase()}`;
  if (lookup.visited.has(key)) {
    throw refuse(lookup, `Autodiscover for ${lookup.asked} went round in a loop (${url.origin})`);
  }
  lookup.visited.add(key);
  const pox = isPox(url);
  let answer = answers?.get(lookup.address.toLowerCase());
  if (answer === undefined) {
    const response = await post(context, url, pox, pox ? poxRequest(lookup.address) : getUserSettingsRequest(url, [lookup.address]));
    if (response.status >= 300 && response.status < 400 && response.location !== undefined) {
      const target = new URL(response.location, url);
      checkScheme(context, lookup, target);
      await approve(context, lookup, url, target);
      lookup.endpoints.unshift(target);
      return undefined;
    }
    if (response.status !== 200) throw new EwsAutodiscoverError(lookup.asked, `Autodiscover endpoint ${url.origin}${url.pathname} answered HTTP ${response.status}`, { retriable: response.status >= 500 });
    try {
      answer = pox ? parsePoxResponse(response.body) : parseGetUserSettingsResponse(response.body)[0];
    } catch (error) {
      throw new EwsAutodiscoverError(lookup.asked, `Autodiscover endpoint ${url.origin}${url.pathname} did not answer as Autodiscover (${error instanceof Error ? error.message : String(error)})`, { retriable: false, cause: error });
    }
    if (answer === undefined) throw new EwsAutodiscoverError(lookup.asked, `Autodiscover endpoint ${url.origin}${url.pathname} returned no answer for the mailbox`, { retriable: false });
  }
  switch (answer.kind) {
    case 'settings':
      return result(context, lookup, answer.settings, pox ? 'pox' : 'soap');
    case 'redirect-url': {
      let target: URL;
      try {
        target = new URL(answer.target, url);
      } catch {
        throw refuse(lookup, `Autodiscover for ${lookup.asked} was redirected to an invalid URL`);
      }
      checkScheme(context, lookup, target);
      await approve(context, lookup, url, target);
      lookup.endpoints.unshift(target);
      return undefined;
    }
    case 'redirect-address': {
      if (!/^[^@\s]+@[^@\s]+$/.test(answer.target)) throw refuse(lookup, `Autodiscover for ${lookup.asked} was redirected to an invalid address`);
      await approve(context, lookup, url, answer.target);
      lookup.address = answer.target;
      // The same endpoint may be asked about the new address.
      lookup.endpoints.unshift(url);
      return undefined;
    }
    case 'error':
      throw new EwsAutodiscoverError(lookup.asked, `Autodiscover for ${lookup.asked}: ${answer.code}${answer.message ? ` (${answer.message})` : ''}`, { retriable: answer.code === 'ServerBusy' || answer.code === 'InternalServerError' });
  }
}

/** Runs one mailbox's lookup through its endpoints until a result, a policy refusal, or none is left. */
async function resolve(context: Context, lookup: Lookup, firstAnswers?: Map<string, UserSettingsAnswer>): Promise<AutodiscoverResult> {
  let answers = firstAnswers;
  while (lookup.endpoints.length > 0) {
    context.options.signal?.throwIfAborted();
    const url = lookup.endpoints.shift()!;
    try {
      const found = await step(context, lookup, url, answers);
      if (found !== undefined) return found;
    } catch (error) {
      if (context.options.signal?.aborted) throw context.options.signal.reason;
      // A broken safety rule ends the lookup; an endpoint that does not work moves to the next.
      if (error instanceof EwsAutodiscoverError && POLICY_REFUSALS.has(error)) throw error;
      if (error instanceof EwsBridgeError && error.code === 'EWS_AUTH_FAILED') throw new EwsAutodiscoverError(lookup.asked, `Autodiscover for ${lookup.asked} failed: ${error.message}`, { retriable: false, cause: error });
      lookup.lastError =
        error instanceof EwsAutodiscoverError
          ? error
          : new EwsAutodiscoverError(lookup.asked, `Autodiscover endpoint ${url.origin}${url.pathname} failed: ${error instanceof Error ? error.message : String(error)}`, {
              retriable: error instanceof EwsBridgeError ? error.retriable : true,
              cause: error,
            });
      context.logger.debug('Autodiscover endpoint failed', { url: `${url.origin}${url.pathname}`, error: lookup.lastError.message });
    }
    answers = undefined;
  }
  throw lookup.lastError ?? new EwsAutodiscoverError(lookup.asked, `Autodiscover for ${lookup.asked}: no endpoint to ask`, { retriable: false });
}

function validate(options: AutodiscoverOptions): void {
  requireObject(options, 'options');
  const mailboxes: unknown = options.mailboxes;
  if (!Array.isArray(mailboxes) || mailboxes.length === 0) throw new TypeError(`mailboxes must be a non-empty array of SMTP addresses (got ${describeValue(mailboxes)})`);
  mailboxes.forEach((m: unknown, i) => {
    if (typeof m !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(m)) throw new TypeError(`mailboxes[${i}] must be an SMTP address (user@domain) (got ${describeValue(m)})`);
  });
  intInRange(options.maxRedirects, 'maxRedirects', 10, 0, 50);
  oneOf(options.prefer, 'prefer', ['external', 'internal'], 'external');
}

/**
 * Finds the EWS URL and GroupingInformation of each mailbox. Never rejects for one mailbox's
 * failure: each outcome says `ok` or carries its `EwsAutodiscoverError`. Mailboxes are asked
 * about 100 at a time through the first SOAP endpoint; each redirect is then followed per mailbox.
 *
 * @throws TypeError/RangeError for invalid options; `signal.reason` when aborted.
 */
export async function autodiscover(options: AutodiscoverOptions): Promise<AutodiscoverOutcome[]> {
  validate(options);
  const context: Context = { options, maxRedirects: options.maxRedirects ?? 10, logger: options.logger ?? silentLogger };
  const first = options.mailboxes[0]!;
  const start = options.url === undefined ? defaultEndpoints(domainOf(first)) : explicitEndpoints(options.url);
  const outcomes: AutodiscoverOutcome[] = [];
  for (let at = 0; at < options.mailboxes.length; at += MAX_USERS_PER_REQUEST) {
    const batch = options.mailboxes.slice(at, at + MAX_USERS_PER_REQUEST);
    // One batched request to the first SOAP endpoint of the batch's domain; whatever it cannot
    // answer (or if it fails) goes mailbox by mailbox.
    let answers: Map<string, UserSettingsAnswer> | undefined;
    const soap = start[0]!;
    if (!isPox(soap) && batch.length > 1 && (soap.protocol === 'https:' || options.allowHttp === true)) {
      try {
        const response = await post(context, soap, false, getUserSettingsRequest(soap, batch));
        if (response.status === 200) {
          const parsed = parseGetUserSettingsResponse(response.body);
          if (parsed.length === batch.length) answers = new Map(batch.map((m, i) => [m.toLowerCase(), parsed[i]!]));
        }
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        context.logger.debug('Autodiscover batch failed; asking mailbox by mailbox', { error: error instanceof Error ? error.message : String(error) });
      }
    }
    for (const mailbox of batch) {
      const endpoints = options.url === undefined ? defaultEndpoints(domainOf(mailbox)) : explicitEndpoints(options.url);
      const lookup: Lookup = { asked: mailbox, address: mailbox, endpoints, redirects: 0, visited: new Set(), lastError: undefined };
      try {
        outcomes.push({ ok: true, result: await resolve(context, lookup, answers && endpoints[0]?.href === soap.href ? answers : undefined) });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        const typed = error instanceof EwsAutodiscoverError ? error : new EwsAutodiscoverError(mailbox, `Autodiscover for ${mailbox} failed`, { retriable: true, cause: error });
        outcomes.push({ ok: false, mailbox, error: typed });
      }
    }
  }
  return outcomes;
}

/** Mailboxes that can share streaming connections: one EWS URL, one mailbox server. */
export interface MailboxGroup {
  /** The EWS URL every mailbox of the group is served from. */
  readonly ewsUrl: string;
  /** Their common `GroupingInformation`; `undefined` for mailboxes that had none. */
  readonly groupingInformation: string | undefined;
  /** The group's anchor (`StreamingGroup`'s `anchorMailbox`): its first mailbox. */
  readonly anchorMailbox: string;
  /** At most `maxPerGroup` mailboxes, in the order given. */
  readonly mailboxes: readonly string[];
}

/**
 * Groups Autodiscover results per mailbox server — same EWS URL and same `GroupingInformation`
 * (mailboxes without one are grouped by EWS URL alone) — in chunks of at most `maxPerGroup`
 * (default 200, the most subscriptions one GetStreamingEvents carries), each with its anchor.
 * Feed each group to one `StreamingGroup({ url: group.ewsUrl, anchorMailbox: group.anchorMailbox })`.
 */
export function groupMailboxesByServer(results: readonly AutodiscoverResult[], options: { readonly maxPerGroup?: number } = {}): MailboxGroup[] {
  const maxPerGroup = intInRange(requireObject(options, 'options').maxPerGroup, 'maxPerGroup', 200, 1, 200);
  const byServer = new Map<string, AutodiscoverResult[]>();
  for (const r of results) {
    const key = `${r.ewsUrl.toLowerCase()}\n${r.groupingInformation ?? ''}`;
    const list = byServer.get(key) ?? [];
    list.push(r);
    byServer.set(key, list);
  }
  const groups: MailboxGroup[] = [];
  for (const list of byServer.values()) {
    for (let at = 0; at < list.length; at += maxPerGroup) {
      const chunk = list.slice(at, at + maxPerGroup);
      groups.push({ ewsUrl: chunk[0]!.ewsUrl, groupingInformation: chunk[0]!.groupingInformation, anchorMailbox: chunk[0]!.mailbox, mailboxes: chunk.map((r) => r.mailbox) });
    }
  }
  return groups;
}
