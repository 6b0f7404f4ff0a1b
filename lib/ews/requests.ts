/**
 * SOAP request builders for the EWS notification operations: Subscribe (streaming, pull, push),
 * GetStreamingEvents, GetEvents, Unsubscribe and SyncFolderItems. Each returns the complete
 * envelope as a string, element order exactly as `messages.xsd`/`types.xsd` declare it, all text
 * escaped. Arguments are validated up front; errors name the option
 * (`RangeError: connectionTimeoutMinutes must be 1–30 (got 45)`).
 *
 * @packageDocumentation
 */
import { EVENT_TYPES, type DistinguishedFolderName, type EventType, type ExchangeVersion, type FolderRef } from '../model.js';
import {
  MESSAGES_NS,
  SOAP_NS,
  TYPES_NS,
  XML_DECLARATION,
  attribute,
  textElement,
} from './xml.js';
import { booleanOption, describeKind, describeValue, requireIntInRange, requireObject, requireString } from '../validate.js';

/** The `SOAPAction` HTTP header value of each operation this library sends or emulates. */
export const SOAP_ACTIONS = {
  Subscribe: `${MESSAGES_NS}/Subscribe`,
  GetStreamingEvents: `${MESSAGES_NS}/GetStreamingEvents`,
  GetEvents: `${MESSAGES_NS}/GetEvents`,
  Unsubscribe: `${MESSAGES_NS}/Unsubscribe`,
  SyncFolderItems: `${MESSAGES_NS}/SyncFolderItems`,
  SendNotification: `${MESSAGES_NS}/SendNotification`,
} as const;

/** An operation named in {@link SOAP_ACTIONS}. */
export type EwsOperation = keyof typeof SOAP_ACTIONS;

/** Every value of {@link ExchangeVersion}, for run-time checks. */
export const EXCHANGE_VERSIONS: readonly ExchangeVersion[] = [
  'Exchange2010_SP1',
  'Exchange2010_SP2',
  'Exchange2013',
  'Exchange2013_SP1',
  'Exchange2015',
  'Exchange2016',
];

/**
 * Whose identity the request runs as (`t:ExchangeImpersonation/t:ConnectingSID`). Give exactly one
 * field; `smtpAddress` is the usual choice.
 */
export type ImpersonationTarget =
  | { readonly smtpAddress: string }
  | { readonly primarySmtpAddress: string }
  | { readonly principalName: string }
  | { readonly sid: string };

/**
 * A distinguished folder of another mailbox (`t:DistinguishedFolderId` with `t:Mailbox`): for
 * delegate access to a mailbox the caller has rights on. Under impersonation the plain name
 * (`'inbox'`) already means the impersonated mailbox; the mailbox form is not needed there.
 */
export interface MailboxFolderRef {
  /** Distinguished folder name, lower case as the schema spells it, e.g. `'inbox'`. */
  readonly distinguishedId: DistinguishedFolderName;
  /** SMTP address of the mailbox that owns the folder. */
  readonly mailbox: string;
}

/**
 * A folder in a request: a distinguished name (`'inbox'`), a distinguished folder of another
 * mailbox ({@link MailboxFolderRef}), or an explicit folder id (`{ id, changeKey? }`).
 */
export type FolderSpec = FolderRef | MailboxFolderRef;

/** Options every request builder takes. */
export interface EwsRequestOptions {
  /**
   * `t:RequestServerVersion/@Version` in the SOAP header. {@link ExchangeVersion} starts at
   * `Exchange2010_SP1`, where streaming subscriptions arrived (and after `SubscribeToAllFolders`,
   * which came with Exchange 2010). Default `'Exchange2013'`.
   */
  readonly requestServerVersion?: ExchangeVersion;
  /** Adds an `ExchangeImpersonation` SOAP header acting as this mailbox. Default: none. */
  readonly impersonation?: ImpersonationTarget;
}

/** What to watch: shared by the three Subscribe builders. */
export interface SubscriptionScopeOptions extends EwsRequestOptions {
  /**
   * Folders to watch (`t:FolderIds`), in the order given. Required and non-empty unless
   * `subscribeToAllFolders` is `true`, in which case it must be absent (or empty). Default: none.
   */
  readonly folders?: readonly FolderSpec[];
  /**
   * Watch every folder of the mailbox (the `SubscribeToAllFolders="true"` attribute; it exists from
   * the Exchange 2010 schema on, not in Exchange 2007's, which `requestServerVersion` cannot name).
   * Counts as one subscription against EWSMaxSubscriptions. Default `false`.
   */
  readonly subscribeToAllFolders?: boolean;
  /**
   * Event types to receive (`t:EventTypes`), duplicates dropped, order kept.
   * Default: every type in {@link EVENT_TYPES}.
   */
  readonly eventTypes?: readonly EventType[];
}

/** Options of {@link buildStreamingSubscribeRequest}. */
export type StreamingSubscribeRequestOptions = SubscriptionScopeOptions;

/** Options of {@link buildPullSubscribeRequest}. */
export interface PullSubscribeRequestOptions extends SubscriptionScopeOptions {
  /**
   * Minutes the server keeps the subscription alive without a GetEvents call (`t:Timeout`),
   * an integer 1–1440. Required.
   */
  readonly timeoutMinutes: number;
  /** Resume from this watermark (`t:Watermark`) instead of "now". Default: none. */
  readonly watermark?: string;
}

/** Options of {@link buildPushSubscribeRequest}. */
export interface PushSubscribeRequestOptions extends SubscriptionScopeOptions {
  /** The listener Exchange POSTs `SendNotification` to (`t:URL`), an absolute http(s) URL. Required. */
  readonly url: string;
  /**
   * Minutes between StatusEvent keep-alives when nothing happens (`t:StatusFrequency`), an integer
   * 1–1440. Default `30`.
   */
  readonly statusFrequencyMinutes?: number;
  /** Resume from this watermark (`t:Watermark`). Default: none. */
  readonly watermark?: string;
}

/** Options of {@link buildGetStreamingEventsRequest}. */
export interface GetStreamingEventsRequestOptions extends EwsRequestOptions {
  /** Streaming subscriptions to serve on this connection: 1–200 distinct ids. Required. */
  readonly subscriptionIds: readonly string[];
  /**
   * Minutes until the server closes the connection (`m:ConnectionTimeout`), an integer 1–30.
   * Default `30`.
   */
  readonly connectionTimeoutMinutes?: number;
}

/** Options of {@link buildGetEventsRequest}. */
export interface GetEventsRequestOptions extends EwsRequestOptions {
  /** The pull subscription. Required. */
  readonly subscriptionId: string;
  /** The last watermark received (from Subscribe, or the last event of the previous GetEvents). Required. */
  readonly watermark: string;
}

/** Options of {@link buildUnsubscribeRequest}. */
export interface UnsubscribeRequestOptions extends EwsRequestOptions {
  /** The pull or push subscription to end. Required. */
  readonly subscriptionId: string;
}

/** Options of {@link buildSyncFolderItemsRequest} (ItemShape is always `IdOnly`). */
export interface SyncFolderItemsRequestOptions extends EwsRequestOptions {
  /** The folder to synchronise (`m:SyncFolderId`). Required. */
  readonly folder: FolderSpec;
  /** The state returned by the previous call; absent for the first call. Default: none. */
  readonly syncState?: string;
  /** Changes per response (`m:MaxChangesReturned`), an integer 1–512. Default `512`. */
  readonly maxChangesReturned?: number;
  /**
   * Ask for each created or updated item's `ParentFolderId` too (`AdditionalProperties`
   * `item:ParentFolderId`), so a change can name its folder by id. Default `false`.
   */
  readonly withParentFolderId?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Validation. Errors name the option path so callers can find the bad value at once.

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);
const EXCHANGE_VERSION_SET: ReadonlySet<string> = new Set(EXCHANGE_VERSIONS);
// Every name in the schema's DistinguishedFolderIdNameType is lower-case ASCII letters; checking
// the shape (not the list) catches `'Inbox'` (ErrorSchemaValidation on the server) while still
// accepting names newer servers add.
const DISTINGUISHED_NAME = /^[a-z]+$/;

function requireVersion(value: unknown, field: string): ExchangeVersion {
  if (typeof value !== 'string' || !EXCHANGE_VERSION_SET.has(value)) {
    throw new RangeError(`${field} must be one of ${EXCHANGE_VERSIONS.join(', ')} (got ${describeValue(value)})`);
  }
  return value as ExchangeVersion;
}

// ---------------------------------------------------------------------------------------------
// Pieces

const IMPERSONATION_ELEMENTS = {
  smtpAddress: 't:SmtpAddress',
  primarySmtpAddress: 't:PrimarySmtpAddress',
  principalName: 't:PrincipalName',
  sid: 't:SID',
} as const;

function impersonationHeader(target: unknown): string {
  const obj = requireObject(target, 'impersonation');
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  const key = keys[0];
  if (keys.length !== 1 || key === undefined || !(key in IMPERSONATION_ELEMENTS)) {
    throw new RangeError(`impersonation must have exactly one of ${Object.keys(IMPERSONATION_ELEMENTS).join(', ')} (got ${keys.length === 0 ? 'none' : keys.join(', ')})`);
  }
  const qname = IMPERSONATION_ELEMENTS[key as keyof typeof IMPERSONATION_ELEMENTS];
  const value = requireString(obj[key], `impersonation.${key}`);
  return `<t:ExchangeImpersonation><t:ConnectingSID>${textElement(qname, value, `impersonation.${key}`)}</t:ConnectingSID></t:ExchangeImpersonation>`;
}

/** Wraps a body element into a complete envelope with the standard EWS request header. */
function envelope(options: EwsRequestOptions, body: string): string {
  const version = requireVersion(options.requestServerVersion ?? 'Exchange2013', 'requestServerVersion');
  const impersonation = options.impersonation === undefined ? '' : impersonationHeader(options.impersonation);
  return (
    `${XML_DECLARATION}<soap:Envelope xmlns:soap="${SOAP_NS}" xmlns:m="${MESSAGES_NS}" xmlns:t="${TYPES_NS}">` +
    `<soap:Header><t:RequestServerVersion Version="${version}"/>${impersonation}</soap:Header>` +
    `<soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

/** `t:FolderId` or `t:DistinguishedFolderId` for one folder. */
function folderIdElement(folder: unknown, field: string): string {
  if (typeof folder === 'string') {
    if (!DISTINGUISHED_NAME.test(folder)) {
      throw new RangeError(`${field} must be a lower-case distinguished folder name such as "inbox" (got ${describeValue(folder)})`);
    }
    return `<t:DistinguishedFolderId Id="${folder}"/>`;
  }
  const obj = requireObject(folder, field);
  if ('distinguishedId' in obj) {
    const name = obj.distinguishedId;
    if (typeof name !== 'string' || !DISTINGUISHED_NAME.test(name)) {
      throw new RangeError(
        `${field}.distinguishedId must be a lower-case distinguished folder name such as "inbox" (got ${describeValue(name)})`,
      );
    }
    const mailbox = requireString(obj.mailbox, `${field}.mailbox`);
    return `<t:DistinguishedFolderId Id="${name}"><t:Mailbox>${textElement('t:EmailAddress', mailbox, `${field}.mailbox`)}</t:Mailbox></t:DistinguishedFolderId>`;
  }
  const id = requireString(obj.id, `${field}.id`);
  const changeKey = obj.changeKey === undefined ? undefined : requireString(obj.changeKey, `${field}.changeKey`);
  return `<t:FolderId${attribute('Id', id, `${field}.id`)}${attribute('ChangeKey', changeKey, `${field}.changeKey`)}/>`;
}

/**
 * Checks what a subscription watches — `folders` (each a distinguished name, `{ id, changeKey? }`
 * or `{ distinguishedId, mailbox }`), `subscribeToAllFolders`, `eventTypes` — by the rules the
 * Subscribe builders apply, with their messages, and returns the `t:FolderIds` and `t:EventTypes`
 * contents (event types once each). The sources call it when they resolve their options, before
 * any I/O.
 *
 * @throws TypeError or RangeError naming the option (`folders[1].id must not be empty`).
 */
export function validateSubscriptionScope(
  options: Pick<SubscriptionScopeOptions, 'folders' | 'subscribeToAllFolders' | 'eventTypes'>,
): { readonly folderIds: string; readonly eventTypes: string } {
  const all = options.subscribeToAllFolders;
  if (all !== undefined && typeof all !== 'boolean') {
    throw new TypeError(`subscribeToAllFolders must be a boolean (got ${describeValue(all)})`);
  }
  const folders = options.folders;
  if (folders !== undefined && !Array.isArray(folders)) {
    throw new TypeError(`folders must be an array (got ${describeValue(folders)})`);
  }
  let folderIds = '';
  if (all === true) {
    if (folders !== undefined && folders.length > 0) {
      throw new RangeError('folders must be empty or absent when subscribeToAllFolders is true');
    }
  } else {
    if (folders === undefined || folders.length === 0) {
      throw new RangeError('folders must list at least one folder unless subscribeToAllFolders is true');
    }
    folderIds = folders.map((f, i) => folderIdElement(f, `folders[${i}]`)).join('');
  }

  const requested = options.eventTypes ?? EVENT_TYPES;
  if (!Array.isArray(requested)) throw new TypeError(`eventTypes must be an array (got ${describeValue(requested)})`);
  if (requested.length === 0) throw new RangeError('eventTypes must not be empty');
  const seen = new Set<string>();
  let eventTypes = '';
  requested.forEach((type: unknown, i) => {
    if (typeof type !== 'string' || !EVENT_TYPE_SET.has(type)) {
      throw new RangeError(`eventTypes[${i}] must be one of ${EVENT_TYPES.join(', ')} (got ${describeValue(type)})`);
    }
    if (!seen.has(type)) {
      seen.add(type);
      eventTypes += `<t:EventType>${type}Event</t:EventType>`;
    }
  });
  return { folderIds, eventTypes };
}

/** The body of a `*SubscriptionRequest`, up to and including `t:EventTypes`, and its attributes. */
function subscriptionScope(options: SubscriptionScopeOptions): { attrs: string; children: string } {
  const cached = lastScope !== undefined && sameScope(lastScope, options) ? lastScope.scope : undefined;
  if (cached) return cached;
  const { folderIds, eventTypes } = validateSubscriptionScope(options);
  const scope = {
    attrs: options.subscribeToAllFolders === true ? ' SubscribeToAllFolders="true"' : '',
    children: `${folderIds === '' ? '' : `<t:FolderIds>${folderIds}</t:FolderIds>`}<t:EventTypes>${eventTypes}</t:EventTypes>`,
  };
  lastScope = cacheableScope(options, scope);
  return scope;
}

/**
 * The last scope written, with copies of what it was written from: a group subscribes thousands of
 * mailboxes to one scope, and checking it again costs more than comparing a few strings. Only
 * scopes of plain strings (distinguished folder names, event types) are kept: nothing in them can
 * change behind the copy.
 */
let lastScope: { readonly all: boolean | undefined; readonly folders: readonly string[] | undefined; readonly eventTypes: readonly string[] | undefined; readonly scope: { attrs: string; children: string } } | undefined;

function stringsOnly(value: unknown): readonly string[] | undefined | false {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > 16) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return [...(value as string[])];
}

function cacheableScope(options: SubscriptionScopeOptions, scope: { attrs: string; children: string }): typeof lastScope {
  const folders = stringsOnly(options.folders);
  const eventTypes = stringsOnly(options.eventTypes);
  if (folders === false || eventTypes === false) return undefined;
  return { all: options.subscribeToAllFolders, folders, eventTypes, scope };
}

function sameStrings(kept: readonly string[] | undefined, given: unknown): boolean {
  if (kept === undefined || given === undefined) return kept === given;
  if (!Array.isArray(given) || given.length !== kept.length) return false;
  for (let i = 0; i < kept.length; i++) if (given[i] !== kept[i]) return false;
  return true;
}

function sameScope(kept: NonNullable<typeof lastScope>, options: SubscriptionScopeOptions): boolean {
  return kept.all === options.subscribeToAllFolders && sameStrings(kept.folders, options.folders) && sameStrings(kept.eventTypes, options.eventTypes);
}

function optionalWatermark(value: unknown, qname: string): string {
  return value === undefined ? '' : textElement(qname, requireString(value, 'watermark'), 'watermark');
}

// ---------------------------------------------------------------------------------------------
// Builders

/**
 * `Subscribe` with a `StreamingSubscriptionRequest`: folders (or all folders) and event types only;
 * streaming subscriptions have no watermark and no timeout.
 */
export function buildStreamingSubscribeRequest(options: StreamingSubscribeRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const scope = subscriptionScope(opts);
  return envelope(
    opts,
    `<m:Subscribe><m:StreamingSubscriptionRequest${scope.attrs}>${scope.children}</m:StreamingSubscriptionRequest></m:Subscribe>`,
  );
}

/** `Subscribe` with a `PullSubscriptionRequest`: scope, optional resume watermark, then `t:Timeout`. */
export function buildPullSubscribeRequest(options: PullSubscribeRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const scope = subscriptionScope(opts);
  const watermark = optionalWatermark(opts.watermark, 't:Watermark');
  const timeout = requireIntInRange(opts.timeoutMinutes, 'timeoutMinutes', 1, 1440);
  return envelope(
    opts,
    `<m:Subscribe><m:PullSubscriptionRequest${scope.attrs}>${scope.children}${watermark}` +
      `<t:Timeout>${timeout}</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`,
  );
}

/**
 * `Subscribe` with a `PushSubscriptionRequest`: scope, optional watermark, `t:StatusFrequency`,
 * then `t:URL`. Used by the simulator and tests; the bridge itself never asks for push.
 */
export function buildPushSubscribeRequest(options: PushSubscribeRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const scope = subscriptionScope(opts);
  const watermark = optionalWatermark(opts.watermark, 't:Watermark');
  const frequency = requireIntInRange(opts.statusFrequencyMinutes ?? 30, 'statusFrequencyMinutes', 1, 1440);
  const url = requireString(opts.url, 'url');
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    // Only its kind is named: a URL can carry user:password.
    throw new RangeError(`url must be an absolute http or https URL (got ${describeKind(url)})`);
  }
  return envelope(
    opts,
    `<m:Subscribe><m:PushSubscriptionRequest${scope.attrs}>${scope.children}${watermark}` +
      `<t:StatusFrequency>${frequency}</t:StatusFrequency>${textElement('t:URL', url, 'url')}` +
      `</m:PushSubscriptionRequest></m:Subscribe>`,
  );
}

/** `GetStreamingEvents` for 1–200 subscriptions on one connection. */
export function buildGetStreamingEventsRequest(options: GetStreamingEventsRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const ids: unknown = opts.subscriptionIds;
  if (!Array.isArray(ids)) throw new TypeError(`subscriptionIds must be an array (got ${describeValue(ids)})`);
  if (ids.length < 1 || ids.length > 200) {
    throw new RangeError(`subscriptionIds must hold 1–200 ids (got ${ids.length})`);
  }
  const seen = new Set<string>();
  let idElements = '';
  ids.forEach((id: unknown, i) => {
    const field = `subscriptionIds[${i}]`;
    const value = requireString(id, field);
    if (seen.has(value)) throw new RangeError(`${field} repeats an earlier id`);
    seen.add(value);
    idElements += textElement('t:SubscriptionId', value, field);
  });
  const timeout = requireIntInRange(opts.connectionTimeoutMinutes ?? 30, 'connectionTimeoutMinutes', 1, 30);
  return envelope(
    opts,
    `<m:GetStreamingEvents><m:SubscriptionIds>${idElements}</m:SubscriptionIds>` +
      `<m:ConnectionTimeout>${timeout}</m:ConnectionTimeout></m:GetStreamingEvents>`,
  );
}

/** `GetEvents` for a pull subscription from a watermark. */
export function buildGetEventsRequest(options: GetEventsRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const id = requireString(opts.subscriptionId, 'subscriptionId');
  const watermark = requireString(opts.watermark, 'watermark');
  return envelope(
    opts,
    `<m:GetEvents>${textElement('m:SubscriptionId', id, 'subscriptionId')}${textElement('m:Watermark', watermark, 'watermark')}</m:GetEvents>`,
  );
}

/** `Unsubscribe` a pull or push subscription (streaming ones end when their connection closes). */
export function buildUnsubscribeRequest(options: UnsubscribeRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const id = requireString(opts.subscriptionId, 'subscriptionId');
  return envelope(opts, `<m:Unsubscribe>${textElement('m:SubscriptionId', id, 'subscriptionId')}</m:Unsubscribe>`);
}

/**
 * `SyncFolderItems` with `ItemShape` `IdOnly`: what changed in one folder since `syncState`
 * (the recovery path after a streaming gap). Loop while the response's `IncludesLastItemInRange`
 * is false.
 */
export function buildSyncFolderItemsRequest(options: SyncFolderItemsRequestOptions): string {
  requireObject(options, 'options');
  const opts = options;
  if (opts.folder === undefined) throw new TypeError('folder must be given');
  const folder = folderIdElement(opts.folder, 'folder');
  const syncState =
    opts.syncState === undefined ? '' : textElement('m:SyncState', requireString(opts.syncState, 'syncState'), 'syncState');
  const max = requireIntInRange(opts.maxChangesReturned ?? 512, 'maxChangesReturned', 1, 512);
  const extra = booleanOption(opts.withParentFolderId, 'withParentFolderId', false) ? '<t:AdditionalProperties><t:FieldURI FieldURI="item:ParentFolderId"/></t:AdditionalProperties>' : '';
  return envelope(
    opts,
    `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>${extra}</m:ItemShape>` +
      `<m:SyncFolderId>${folder}</m:SyncFolderId>${syncState}` +
      `<m:MaxChangesReturned>${max}</m:MaxChangesReturned></m:SyncFolderItems>`,
  );
}
