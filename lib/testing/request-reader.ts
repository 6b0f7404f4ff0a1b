/**
 * The simulator's strict request reader: turns a SOAP request into a typed {@link EwsRequest}, or
 * into the list of schema rules it breaks. It knows the content models of the operations the
 * simulator serves (element order, required elements, value ranges, enumerations) as written in
 * Microsoft's EWS schema; anything it does not know is a violation, as it would be for Exchange.
 */
import type { EventType } from '../model.js';
import { NS, readXmlTree, XmlReadError, type XmlElement } from '../ews/xml-tree.js';

/** Operations the simulator serves. */
export type SimulatedOperation = 'Subscribe' | 'GetEvents' | 'GetStreamingEvents' | 'Unsubscribe' | 'SyncFolderItems';

/** Every operation the simulator serves, in the order the docs list them. */
export const SIMULATED_OPERATIONS: readonly SimulatedOperation[] = [
  'Subscribe',
  'GetEvents',
  'GetStreamingEvents',
  'Unsubscribe',
  'SyncFolderItems',
];

/** A folder named in a request: a distinguished folder (optionally of another mailbox) or a folder id. */
export type RequestedFolder =
  | { readonly distinguished: string; readonly mailbox?: string }
  | { readonly id: string; readonly changeKey?: string };

/** What the SOAP header said. */
export interface RequestHeader {
  /** `RequestServerVersion/@Version`, when sent. */
  readonly serverVersion?: string;
  /** `ExchangeImpersonation/ConnectingSID`, when sent. */
  readonly impersonation?: {
    readonly by: 'SmtpAddress' | 'PrimarySmtpAddress' | 'PrincipalName' | 'SID';
    readonly value: string;
  };
}

/** A `Subscribe` request. */
export interface SubscribeRequest {
  readonly operation: 'Subscribe';
  readonly kind: 'streaming' | 'pull' | 'push';
  readonly folders: readonly RequestedFolder[];
  readonly subscribeToAllFolders: boolean;
  readonly eventTypes: readonly EventType[];
  /** Pull and push: resume from this watermark. */
  readonly watermark?: string;
  /** Pull: `Timeout` in minutes (1–1440). */
  readonly timeoutMinutes?: number;
  /** Push: `StatusFrequency` in minutes (1–1440). */
  readonly statusFrequencyMinutes?: number;
  /** Push: the listener URL. */
  readonly url?: string;
  /** Push: `CallerData`, echoed by nobody but recorded. */
  readonly callerData?: string;
}

/** A `GetEvents` request. */
export interface GetEventsRequest {
  readonly operation: 'GetEvents';
  readonly subscriptionId: string;
  readonly watermark: string;
}

/** A `GetStreamingEvents` request. */
export interface GetStreamingEventsRequest {
  readonly operation: 'GetStreamingEvents';
  readonly subscriptionIds: readonly string[];
  /** `ConnectionTimeout` in minutes (1–30). */
  readonly connectionTimeoutMinutes: number;
}

/** An `Unsubscribe` request. */
export interface UnsubscribeRequest {
  readonly operation: 'Unsubscribe';
  readonly subscriptionId: string;
}

/** A `SyncFolderItems` request. */
export interface SyncFolderItemsRequest {
  readonly operation: 'SyncFolderItems';
  readonly baseShape: string;
  /** `FieldURI`s of the ItemShape's `AdditionalProperties` (e.g. `item:ParentFolderId`). */
  readonly additionalProperties: readonly string[];
  readonly folder: RequestedFolder;
  readonly syncState?: string;
  readonly ignore: readonly string[];
  readonly maxChangesReturned: number;
  readonly syncScope?: string;
}

/** Any request the simulator serves, as read from the wire. */
export type EwsRequest = (
  | SubscribeRequest
  | GetEventsRequest
  | GetStreamingEventsRequest
  | UnsubscribeRequest
  | SyncFolderItemsRequest
) & { readonly header: RequestHeader };

/** The outcome of reading a request. */
export type ReadResult =
  | { readonly ok: true; readonly request: EwsRequest }
  /** `operation` is the body element's local name when there was one. */
  | { readonly ok: false; readonly kind: 'not-xml' | 'schema' | 'unsupported'; readonly violations: readonly string[]; readonly operation?: string };

/** The most subscription ids one GetStreamingEvents may carry (Exchange's documented limit). */
export const MAX_STREAMING_SUBSCRIPTION_IDS = 200;

const EVENT_TYPE_NAMES: Readonly<Record<string, EventType>> = {
  CopiedEvent: 'Copied',
  CreatedEvent: 'Created',
  DeletedEvent: 'Deleted',
  ModifiedEvent: 'Modified',
  MovedEvent: 'Moved',
  NewMailEvent: 'NewMail',
  FreeBusyChangedEvent: 'FreeBusyChanged',
};

/** `t:DistinguishedFolderIdNameType`, as the Exchange 2016-era schema enumerates it. */
export const DISTINGUISHED_FOLDER_NAMES: ReadonlySet<string> = new Set(
  (
    'calendar contacts deleteditems drafts inbox journal notes outbox sentitems tasks msgfolderroot publicfoldersroot ' +
    'root junkemail searchfolders voicemail recoverableitemsroot recoverableitemsdeletions recoverableitemsversions ' +
    'recoverableitemspurges recoverableitemsdiscoveryholds archiveroot archivemsgfolderroot archivedeleteditems ' +
    'archiveinbox archiverecoverableitemsroot archiverecoverableitemsdeletions archiverecoverableitemsversions ' +
    'archiverecoverableitemspurges archiverecoverableitemsdiscoveryholds syncissues conflicts localfailures ' +
    'serverfailures recipientcache quickcontacts conversationhistory adminauditlogs todosearch mycontacts directory ' +
    'imcontactlist peopleconnect favorites mecontact personmetadata teamspaceactivity teamspacemessaging ' +
    'teamspaceworkitems scheduled orionnotes tagitems alltaggeditems allcategorizeditems externalcontacts teamchat ' +
    'teamchathistory yammerdata yammerroot yammerinbound yammeroutbound yammerfeeds kaizaladata messageingestion ' +
    'onedriveroot onedriverecylebin onedrivesystem onedrivevolume important starred archive'
  ).split(' '),
);

const EXCHANGE_VERSIONS: ReadonlySet<string> = new Set(
  (
    'Exchange2007 Exchange2007_SP1 Exchange2009 Exchange2010 Exchange2010_SP1 Exchange2010_SP2 Exchange2012 ' +
    'Exchange2013 Exchange2013_SP1 Exchange2015 Exchange2016 V2015_10_05 V2016_01_06 V2016_04_13 V2016_07_13 ' +
    'V2016_10_10 V2017_01_07 V2017_04_14 V2017_07_11 V2017_10_09 V2018_01_08'
  ).split(' '),
);

const ITEM_SHAPE_OPTIONAL = [
  'IncludeMimeContent',
  'BodyType',
  'UniqueBodyType',
  'NormalizedBodyType',
  'FilterHtmlContent',
  'ConvertHtmlCodePageToUTF8',
  'InlineImageUrlTemplate',
  'BlockExternalImages',
  'AddBlankTargetToLinks',
  'MaximumBodySize',
  'AdditionalProperties',
];

type Prefix = keyof typeof NS;

/** Collects violations in Exchange's wording ("The element 'X' in namespace '…' has invalid child …"). */
class Violations {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
  }
}

function describe(el: XmlElement): string {
  return `'${el.local}' in namespace '${el.ns}'`;
}

interface Particle {
  readonly ns: Prefix;
  readonly name: string;
  readonly min: number;
  readonly max: number;
}

const one = (ns: Prefix, name: string): Particle => ({ ns, name, min: 1, max: 1 });
const opt = (ns: Prefix, name: string): Particle => ({ ns, name, min: 0, max: 1 });
const many = (ns: Prefix, name: string, min = 1): Particle => ({ ns, name, min, max: Infinity });

/**
 * Matches `parent`'s children against an `xs:sequence` of particles, in order, the way a schema
 * validator does. Returns the matched children by particle name.
 */
function sequence(parent: XmlElement, particles: readonly Particle[], v: Violations): Map<string, XmlElement[]> {
  const found = new Map<string, XmlElement[]>();
  let p = 0;
  let count = 0;
  for (const child of parent.children) {
    let placed = false;
    while (p < particles.length) {
      const particle = particles[p]!;
      if (child.ns === NS[particle.ns] && child.local === particle.name && count < particle.max) {
        const list = found.get(particle.name) ?? [];
        list.push(child);
        found.set(particle.name, list);
        count++;
        placed = true;
        break;
      }
      if (count < particle.min) break;
      p++;
      count = 0;
    }
    if (!placed) {
      const expected = particles
        .slice(p)
        .map((x) => `'${x.name}' in namespace '${NS[x.ns]}'`)
        .join(', ');
      v.add(
        `The element ${describe(parent)} has invalid child element ${describe(child)}.` +
          (expected ? ` List of possible elements expected: ${expected}.` : ''),
      );
      return found;
    }
  }
  for (; p < particles.length; p++) {
    const particle = particles[p]!;
    const have = found.get(particle.name)?.length ?? 0;
    if (have < particle.min) {
      v.add(
        `The element ${describe(parent)} has incomplete content. List of possible elements expected: '${particle.name}' in namespace '${NS[particle.ns]}'.`,
      );
      break;
    }
  }
  return found;
}

function noChildren(el: XmlElement, v: Violations): void {
  const child = el.children[0];
  if (child) v.add(`The element ${describe(el)} cannot contain child element ${describe(child)} because the parent element's content model is text only.`);
}

function invalidValue(el: XmlElement, value: string, type: string, v: Violations): void {
  v.add(`The '${el.ns}:${el.local}' element is invalid - The value '${value}' is invalid according to its datatype '${type}'.`);
}

function nonEmptyText(el: XmlElement, type: string, v: Violations): string {
  noChildren(el, v);
  const value = el.text.trim();
  if (value === '') invalidValue(el, el.text, type, v);
  return value;
}

function intIn(el: XmlElement, min: number, max: number, type: string, v: Violations): number {
  noChildren(el, v);
  const raw = el.text.trim();
  const n = /^[+-]?\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) invalidValue(el, raw, type, v);
  return n;
}

function checkAttributes(el: XmlElement, allowed: readonly string[], required: readonly string[], v: Violations): void {
  for (const name of el.attributes.keys()) {
    if (!allowed.includes(name)) v.add(`The '${name}' attribute is not declared on element ${describe(el)}.`);
  }
  for (const name of required) {
    if (!el.attributes.has(name)) v.add(`The required attribute '${name}' is missing on element ${describe(el)}.`);
  }
}

function readFolderId(el: XmlElement, v: Violations): RequestedFolder {
  checkAttributes(el, ['Id', 'ChangeKey'], ['Id'], v);
  noChildren(el, v);
  const changeKey = el.attributes.get('ChangeKey');
  return { id: el.attributes.get('Id') ?? '', ...(changeKey === undefined ? {} : { changeKey }) };
}

function readDistinguishedFolderId(el: XmlElement, v: Violations): RequestedFolder {
  checkAttributes(el, ['Id', 'ChangeKey'], ['Id'], v);
  const name = el.attributes.get('Id') ?? '';
  if (el.attributes.has('Id') && !DISTINGUISHED_FOLDER_NAMES.has(name)) {
    v.add(`The 'Id' attribute is invalid - The value '${name}' is invalid according to its datatype '${NS.t}:DistinguishedFolderIdNameType' - The Enumeration constraint failed.`);
  }
  const kids = sequence(el, [opt('t', 'Mailbox')], v);
  const mailboxEl = kids.get('Mailbox')?.[0];
  if (!mailboxEl) return { distinguished: name };
  const parts = sequence(
    mailboxEl,
    [opt('t', 'Name'), opt('t', 'EmailAddress'), opt('t', 'RoutingType'), opt('t', 'MailboxType'), opt('t', 'ItemId'), opt('t', 'OriginalDisplayName')],
    v,
  );
  const address = parts.get('EmailAddress')?.[0];
  return { distinguished: name, mailbox: address ? nonEmptyText(address, `${NS.t}:NonEmptyStringType`, v) : '' };
}

/** `t:NonEmptyArrayOfBaseFolderIdsType`: a choice of FolderId / DistinguishedFolderId, at least one. */
function readFolderIds(el: XmlElement, v: Violations): RequestedFolder[] {
  const folders: RequestedFolder[] = [];
  for (const child of el.children) {
    if (child.ns === NS.t && child.local === 'FolderId') folders.push(readFolderId(child, v));
    else if (child.ns === NS.t && child.local === 'DistinguishedFolderId') folders.push(readDistinguishedFolderId(child, v));
    else v.add(`The element ${describe(el)} has invalid child element ${describe(child)}. List of possible elements expected: 'FolderId, DistinguishedFolderId' in namespace '${NS.t}'.`);
  }
  if (el.children.length === 0) v.add(`The element ${describe(el)} has incomplete content. List of possible elements expected: 'FolderId, DistinguishedFolderId' in namespace '${NS.t}'.`);
  return folders;
}

function readEventTypes(el: XmlElement, v: Violations): EventType[] {
  const kids = sequence(el, [many('t', 'EventType')], v);
  const types: EventType[] = [];
  for (const child of kids.get('EventType') ?? []) {
    noChildren(child, v);
    const raw = child.text.trim();
    const type = EVENT_TYPE_NAMES[raw];
    if (type === undefined) {
      v.add(`The '${NS.t}:EventType' element is invalid - The value '${raw}' is invalid according to its datatype '${NS.t}:NotificationEventTypeType' - The Enumeration constraint failed.`);
    } else if (!types.includes(type)) {
      types.push(type);
    }
  }
  return types;
}

function readSubscribe(body: XmlElement, v: Violations): SubscribeRequest | undefined {
  const request = body.children[0];
  if (!request || body.children.length > 1) {
    const extra = body.children[1];
    v.add(
      extra
        ? `The element ${describe(body)} has invalid child element ${describe(extra)}.`
        : `The element ${describe(body)} has incomplete content. List of possible elements expected: 'PullSubscriptionRequest, PushSubscriptionRequest, StreamingSubscriptionRequest' in namespace '${NS.m}'.`,
    );
    return undefined;
  }
  const kinds: Record<string, SubscribeRequest['kind']> = {
    PullSubscriptionRequest: 'pull',
    PushSubscriptionRequest: 'push',
    StreamingSubscriptionRequest: 'streaming',
  };
  const kind = request.ns === NS.m ? kinds[request.local] : undefined;
  if (!kind) {
    v.add(`The element ${describe(body)} has invalid child element ${describe(request)}. List of possible elements expected: 'PullSubscriptionRequest, PushSubscriptionRequest, StreamingSubscriptionRequest' in namespace '${NS.m}'.`);
    return undefined;
  }
  checkAttributes(request, ['SubscribeToAllFolders'], [], v);
  const allRaw = request.attributes.get('SubscribeToAllFolders');
  if (allRaw !== undefined && !['true', 'false', '1', '0'].includes(allRaw)) {
    v.add(`The 'SubscribeToAllFolders' attribute is invalid - The value '${allRaw}' is invalid according to its datatype 'http://www.w3.org/2001/XMLSchema:boolean'.`);
  }
  const particles: Particle[] = [opt('t', 'FolderIds'), one('t', 'EventTypes')];
  if (kind === 'pull') particles.push(opt('t', 'Watermark'), one('t', 'Timeout'));
  if (kind === 'push') particles.push(opt('t', 'Watermark'), one('t', 'StatusFrequency'), one('t', 'URL'), opt('t', 'CallerData'));
  const kids = sequence(request, particles, v);
  const first = (name: string): XmlElement | undefined => kids.get(name)?.[0];
  const foldersEl = first('FolderIds');
  const eventTypesEl = first('EventTypes');
  const watermarkEl = first('Watermark');
  const timeoutEl = first('Timeout');
  const frequencyEl = first('StatusFrequency');
  const urlEl = first('URL');
  const callerDataEl = first('CallerData');
  return {
    operation: 'Subscribe',
    kind,
    folders: foldersEl ? readFolderIds(foldersEl, v) : [],
    subscribeToAllFolders: allRaw === 'true' || allRaw === '1',
    eventTypes: eventTypesEl ? readEventTypes(eventTypesEl, v) : [],
    ...(watermarkEl ? { watermark: nonEmptyText(watermarkEl, `${NS.t}:WatermarkType`, v) } : {}),
    ...(timeoutEl ? { timeoutMinutes: intIn(timeoutEl, 1, 1440, `${NS.t}:SubscriptionTimeoutType`, v) } : {}),
    ...(frequencyEl ? { statusFrequencyMinutes: intIn(frequencyEl, 1, 1440, `${NS.t}:SubscriptionStatusFrequencyType`, v) } : {}),
    ...(urlEl ? { url: (noChildren(urlEl, v), urlEl.text.trim()) } : {}),
    ...(callerDataEl ? { callerData: (noChildren(callerDataEl, v), callerDataEl.text) } : {}),
  };
}

function readGetEvents(body: XmlElement, v: Violations): GetEventsRequest {
  const kids = sequence(body, [one('m', 'SubscriptionId'), one('m', 'Watermark')], v);
  const id = kids.get('SubscriptionId')?.[0];
  const wm = kids.get('Watermark')?.[0];
  return {
    operation: 'GetEvents',
    subscriptionId: id ? nonEmptyText(id, `${NS.t}:SubscriptionIdType`, v) : '',
    watermark: wm ? nonEmptyText(wm, `${NS.t}:WatermarkType`, v) : '',
  };
}

function readGetStreamingEvents(body: XmlElement, v: Violations): GetStreamingEventsRequest {
  const kids = sequence(body, [one('m', 'SubscriptionIds'), one('m', 'ConnectionTimeout')], v);
  const idsEl = kids.get('SubscriptionIds')?.[0];
  const timeoutEl = kids.get('ConnectionTimeout')?.[0];
  const ids = idsEl ? (sequence(idsEl, [many('t', 'SubscriptionId')], v).get('SubscriptionId') ?? []) : [];
  if (ids.length > MAX_STREAMING_SUBSCRIPTION_IDS) {
    v.add(`The element ${describe(idsEl!)} has ${ids.length} SubscriptionId elements; at most ${MAX_STREAMING_SUBSCRIPTION_IDS} are allowed per GetStreamingEvents request.`);
  }
  return {
    operation: 'GetStreamingEvents',
    subscriptionIds: ids.map((el) => nonEmptyText(el, `${NS.t}:SubscriptionIdType`, v)),
    connectionTimeoutMinutes: timeoutEl ? intIn(timeoutEl, 1, 30, `${NS.t}:StreamingSubscriptionConnectionTimeoutType`, v) : 0,
  };
}

function readUnsubscribe(body: XmlElement, v: Violations): UnsubscribeRequest {
  const id = sequence(body, [one('m', 'SubscriptionId')], v).get('SubscriptionId')?.[0];
  return { operation: 'Unsubscribe', subscriptionId: id ? nonEmptyText(id, `${NS.t}:SubscriptionIdType`, v) : '' };
}

function readSyncFolderItems(body: XmlElement, v: Violations): SyncFolderItemsRequest {
  const kids = sequence(
    body,
    [one('m', 'ItemShape'), one('m', 'SyncFolderId'), opt('m', 'SyncState'), opt('m', 'Ignore'), one('m', 'MaxChangesReturned'), opt('m', 'SyncScope')],
    v,
  );
  const first = (name: string): XmlElement | undefined => kids.get(name)?.[0];
  let baseShape = '';
  const additionalProperties: string[] = [];
  const shapeEl = first('ItemShape');
  if (shapeEl) {
    const shape = sequence(shapeEl, [one('t', 'BaseShape'), ...ITEM_SHAPE_OPTIONAL.map((n) => opt('t', n))], v);
    for (const path of shape.get('AdditionalProperties')?.[0]?.children ?? []) {
      if (path.local === 'FieldURI') additionalProperties.push(path.attributes.get('FieldURI') ?? '');
    }
    const baseEl = shape.get('BaseShape')?.[0];
    if (baseEl) {
      baseShape = nonEmptyText(baseEl, `${NS.t}:DefaultShapeNamesType`, v);
      if (!['IdOnly', 'Default', 'AllProperties', 'PcxPeopleSearch'].includes(baseShape)) {
        invalidValue(baseEl, baseShape, `${NS.t}:DefaultShapeNamesType`, v);
      }
    }
  }
  let folder: RequestedFolder = { distinguished: '' };
  const folderEl = first('SyncFolderId');
  if (folderEl) {
    const target = folderEl.children[0];
    if (folderEl.children.length !== 1 || !target || target.ns !== NS.t) {
      v.add(`The element ${describe(folderEl)} must contain exactly one of 'FolderId, DistinguishedFolderId, AddressListId' in namespace '${NS.t}'.`);
    } else if (target.local === 'FolderId') {
      folder = readFolderId(target, v);
    } else if (target.local === 'DistinguishedFolderId') {
      folder = readDistinguishedFolderId(target, v);
    } else {
      v.add(`The element ${describe(folderEl)} has invalid child element ${describe(target)}.`);
    }
  }
  const ignore: string[] = [];
  const ignoreEl = first('Ignore');
  if (ignoreEl) {
    for (const item of sequence(ignoreEl, [many('t', 'ItemId')], v).get('ItemId') ?? []) {
      checkAttributes(item, ['Id', 'ChangeKey'], ['Id'], v);
      ignore.push(item.attributes.get('Id') ?? '');
    }
  }
  const maxEl = first('MaxChangesReturned');
  const scopeEl = first('SyncScope');
  const syncStateEl = first('SyncState');
  let syncScope: string | undefined;
  if (scopeEl) {
    syncScope = nonEmptyText(scopeEl, `${NS.t}:SyncFolderItemsScopeType`, v);
    if (!['NormalItems', 'NormalAndAssociatedItems'].includes(syncScope)) invalidValue(scopeEl, syncScope, `${NS.t}:SyncFolderItemsScopeType`, v);
  }
  return {
    operation: 'SyncFolderItems',
    baseShape,
    additionalProperties,
    folder,
    ...(syncStateEl ? { syncState: (noChildren(syncStateEl, v), syncStateEl.text.trim()) } : {}),
    ignore,
    maxChangesReturned: maxEl ? intIn(maxEl, 1, 512, `${NS.t}:MaxSyncChangesReturnedType`, v) : 0,
    ...(syncScope === undefined ? {} : { syncScope }),
  };
}

function readHeader(header: XmlElement | undefined, v: Violations): RequestHeader {
  if (!header) return {};
  let serverVersion: string | undefined;
  let impersonation: RequestHeader['impersonation'];
  for (const el of header.children) {
    if (el.ns !== NS.t) continue; // foreign SOAP headers without mustUnderstand are ignorable
    if (el.local === 'RequestServerVersion') {
      checkAttributes(el, ['Version'], ['Version'], v);
      serverVersion = el.attributes.get('Version');
      if (serverVersion !== undefined && !EXCHANGE_VERSIONS.has(serverVersion)) {
        v.add(`The 'Version' attribute is invalid - The value '${serverVersion}' is invalid according to its datatype '${NS.t}:ExchangeVersionType' - The Enumeration constraint failed.`);
      }
    } else if (el.local === 'ExchangeImpersonation') {
      const sid = sequence(el, [one('t', 'ConnectingSID')], v).get('ConnectingSID')?.[0];
      const choice = sid?.children[0];
      if (sid && (sid.children.length !== 1 || !choice)) {
        v.add(`The element ${describe(sid)} must contain exactly one of 'PrincipalName, SID, PrimarySmtpAddress, SmtpAddress' in namespace '${NS.t}'.`);
      } else if (choice) {
        const by = choice.local;
        if (choice.ns === NS.t && (by === 'SmtpAddress' || by === 'PrimarySmtpAddress' || by === 'PrincipalName' || by === 'SID')) {
          impersonation = { by, value: nonEmptyText(choice, `${NS.t}:NonEmptyStringType`, v) };
        } else {
          v.add(`The element ${describe(sid!)} has invalid child element ${describe(choice)}.`);
        }
      }
    }
  }
  return { ...(serverVersion === undefined ? {} : { serverVersion }), ...(impersonation ? { impersonation } : {}) };
}

/**
 * Reads a SOAP request. Never throws: a document that is not XML, not a SOAP envelope or breaks the
 * schema comes back as `{ ok: false }` with Exchange-style violation messages.
 */
export function readRequest(xml: string): ReadResult {
  let root: XmlElement;
  try {
    root = readXmlTree(xml);
  } catch (err) {
    return { ok: false, kind: 'not-xml', violations: [err instanceof XmlReadError ? err.message : String(err)] };
  }
  const v = new Violations();
  if (root.ns !== NS.soap || root.local !== 'Envelope') {
    return { ok: false, kind: 'schema', violations: [`The root element ${describe(root)} is not a SOAP 1.1 Envelope.`] };
  }
  const parts = sequence(root, [opt('soap', 'Header'), one('soap', 'Body')], v);
  const body = parts.get('Body')?.[0];
  if (!body) return { ok: false, kind: 'schema', violations: v.list };
  const operationEl = body.children[0];
  if (!operationEl || body.children.length !== 1) {
    return { ok: false, kind: 'schema', violations: [`The SOAP Body must contain exactly one request element.`] };
  }
  if (operationEl.ns !== NS.m) {
    return { ok: false, kind: 'schema', operation: operationEl.local, violations: [`The element ${describe(operationEl)} is not declared.`] };
  }
  const header = readHeader(parts.get('Header')?.[0], v);
  checkAttributes(operationEl, [], [], v);
  let request: EwsRequest | undefined;
  switch (operationEl.local) {
    case 'Subscribe': {
      const r = readSubscribe(operationEl, v);
      request = r && { ...r, header };
      break;
    }
    case 'GetEvents':
      request = { ...readGetEvents(operationEl, v), header };
      break;
    case 'GetStreamingEvents':
      request = { ...readGetStreamingEvents(operationEl, v), header };
      break;
    case 'Unsubscribe':
      request = { ...readUnsubscribe(operationEl, v), header };
      break;
    case 'SyncFolderItems':
      request = { ...readSyncFolderItems(operationEl, v), header };
      break;
    default:
      return {
        ok: false,
        kind: 'unsupported',
        operation: operationEl.local,
        violations: [`The EwsSimulator does not implement the ${operationEl.local} operation.`],
      };
  }
  if (v.list.length > 0 || !request) return { ok: false, kind: 'schema', operation: operationEl.local, violations: v.list };
  return { ok: true, request };
}
