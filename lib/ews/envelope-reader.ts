/**
 * Turns the SAX events of one SOAP envelope into an {@link EwsEnvelope}. Used by `parser.ts`,
 * which owns the byte stream, the XML parser and the security checks; this file only knows the
 * EWS shapes.
 *
 * It is a small state machine over a stack of frame kinds: every element either opens a frame
 * the parent knows (by namespace URI and local name, never by prefix) or is skipped with its whole
 * subtree, which is what keeps unknown elements harmless (forward compatibility) and the work per
 * element constant.
 *
 * @packageDocumentation
 */
import { EwsParseError, EwsProtocolError } from '../errors.js';
import type { Id, NotificationEvent, PushNotification, SubscriptionStatus } from '../model.js';
import { stringSlots } from './filled-array.js';
import type {
  EwsBody,
  EwsEnvelope,
  ResponseClass,
  ResponseMessage,
  ServerVersionInfo,
  SoapFault,
  SyncItemChange,
} from './messages.js';

// Kept private (the request builders export their own copies) so the parser depends on nothing
// but the shared contracts.
const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const M_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';

// Frame kinds.
const F_ENVELOPE = 1;
const F_HEADER = 2;
const F_BODY = 3;
const F_FAULT = 4;
const F_DETAIL = 5;
const F_MSGXML = 6;
const F_RESPONSE = 7;
const F_RESPONSE_MESSAGES = 8;
const F_MESSAGE = 9;
const F_NOTIFICATIONS = 10;
const F_NOTIFICATION = 11;
const F_EVENT = 12;
const F_ERROR_SUB_IDS = 13;
const F_CHANGES = 14;
const F_CHANGE = 15;
const F_CHANGE_ITEM = 16;
const F_SN_RESULT = 17;
const F_LEAF = 18;

// Where the text of the current leaf element goes.
const L_FAULT_CODE = 1;
const L_FAULT_STRING = 2;
const L_DETAIL_CODE = 3;
const L_DETAIL_MESSAGE = 4;
const L_MSGXML_VALUE = 5;
const L_RESPONSE_CODE = 6;
const L_MESSAGE_TEXT = 7;
const L_DESCRIPTIVE_LINK_KEY = 8;
const L_SUBSCRIPTION_ID = 9;
const L_WATERMARK = 10;
const L_CONNECTION_STATUS = 11;
const L_ERROR_SUBSCRIPTION_ID = 12;
const L_SYNC_STATE = 13;
const L_INCLUDES_LAST = 14;
const L_N_SUBSCRIPTION_ID = 15;
const L_N_PREVIOUS_WATERMARK = 16;
const L_N_MORE_EVENTS = 17;
const L_E_WATERMARK = 18;
const L_E_TIMESTAMP = 19;
const L_E_UNREAD_COUNT = 20;
const L_C_IS_READ = 21;
const L_SUBSCRIPTION_STATUS = 22;

// Message kinds.
const K_OTHER = 0;
const K_GET_STREAMING_EVENTS = 1;
const K_SUBSCRIBE = 2;
const K_GET_EVENTS = 3;
const K_UNSUBSCRIBE = 4;
const K_SYNC_FOLDER_ITEMS = 5;
const K_SEND_NOTIFICATION = 6;

const MESSAGE_KINDS: Readonly<Record<string, number>> = {
  GetStreamingEventsResponseMessage: K_GET_STREAMING_EVENTS,
  SubscribeResponseMessage: K_SUBSCRIBE,
  GetEventsResponseMessage: K_GET_EVENTS,
  UnsubscribeResponseMessage: K_UNSUBSCRIBE,
  SyncFolderItemsResponseMessage: K_SYNC_FOLDER_ITEMS,
  SendNotificationResponseMessage: K_SEND_NOTIFICATION,
};

type EventTypeName = NotificationEvent['type'];
const EVENT_TYPES: Readonly<Record<string, EventTypeName>> = {
  NewMailEvent: 'NewMail',
  CreatedEvent: 'Created',
  DeletedEvent: 'Deleted',
  ModifiedEvent: 'Modified',
  MovedEvent: 'Moved',
  CopiedEvent: 'Copied',
  FreeBusyChangedEvent: 'FreeBusyChanged',
  StatusEvent: 'Status',
};

type ChangeType = SyncItemChange['type'];
const CHANGE_TYPES: Readonly<Record<string, ChangeType>> = {
  Create: 'Create',
  Update: 'Update',
  Delete: 'Delete',
  ReadFlagChange: 'ReadFlagChange',
};

// Which id element of an event an `Id`-bearing child is.
const ID_ITEM = 1;
const ID_FOLDER = 2;
const ID_PARENT = 3;
const ID_OLD_ITEM = 4;
const ID_OLD_FOLDER = 5;
const ID_OLD_PARENT = 6;
const EVENT_ID_ELEMENTS: Readonly<Record<string, number>> = {
  ItemId: ID_ITEM,
  FolderId: ID_FOLDER,
  ParentFolderId: ID_PARENT,
  OldItemId: ID_OLD_ITEM,
  OldFolderId: ID_OLD_FOLDER,
  OldParentFolderId: ID_OLD_PARENT,
};

/**
 * Every element name this reader compares against, as its own constants. NamespaceScopes hands
 * out these strings for the elements of the stream (see {@link internName}), so each comparison
 * and table lookup by local name is a pointer comparison and a fast keyed access rather than a
 * comparison of characters (saxes makes a new string for every name it reads).
 */
const KNOWN_NAMES = new Map<string, string>(
  [
    ...Object.keys(MESSAGE_KINDS),
    ...Object.keys(EVENT_TYPES),
    ...Object.keys(CHANGE_TYPES),
    ...Object.keys(EVENT_ID_ELEMENTS),
    'Envelope',
    'Header',
    'Body',
    'Fault',
    'ServerVersionInfo',
    'ResponseMessages',
    'Notifications',
    'Notification',
    'SubscriptionId',
    'PreviousWatermark',
    'MoreEvents',
    'Watermark',
    'TimeStamp',
    'UnreadCount',
    'ResponseCode',
    'MessageText',
    'DescriptiveLinkKey',
    'MessageXml',
    'ConnectionStatus',
    'ErrorSubscriptionIds',
    'SyncState',
    'IncludesLastItemInRange',
    'Changes',
    'IsRead',
    'faultcode',
    'faultstring',
    'detail',
    'Message',
    'Value',
    'SubscriptionStatus',
    'SendNotificationResult',
    'SendNotification',
  ].map((name) => [name, name]),
);

/** `local` as the reader's own constant when it is a name the reader knows; otherwise as is. */
export function internName(local: string): string {
  return KNOWN_NAMES.get(local) ?? local;
}

/** Body elements' operation names (`GetStreamingEventsResponse` → `GetStreamingEvents`), made once each. */
const OPERATIONS = new Map<string, string>();
const MAX_OPERATIONS = 64;

function operationOf(local: string): string {
  let operation = OPERATIONS.get(local);
  if (operation === undefined) {
    operation = local.slice(0, -8);
    if (OPERATIONS.size < MAX_OPERATIONS) OPERATIONS.set(local, operation);
  }
  return operation;
}

/** Mutable state of the response message being read. */
interface MessageDraft {
  kind: number;
  elementName: string;
  responseClass: ResponseClass;
  responseCode: string | undefined;
  messageText: string | undefined;
  messageXml: Record<string, string> | undefined;
  descriptiveLinkKey: number | undefined;
  /** `undefined` until the first (see {@link appended}). */
  notifications: PushNotification[] | undefined;
  errorSubscriptionIds: string[];
  connectionStatus: 'OK' | 'Closed' | undefined;
  subscriptionId: string | undefined;
  watermark: string | undefined;
  syncState: string | undefined;
  includesLastItemInRange: boolean | undefined;
  changes: SyncItemChange[];
}

/** A ServerVersionInfo's attributes as read, and what they gave. */
interface VersionTag {
  readonly major: string | undefined;
  readonly minor: string | undefined;
  readonly majorBuild: string | undefined;
  readonly minorBuild: string | undefined;
  readonly version: string | undefined;
  readonly info: ServerVersionInfo;
}

/** Mutable state of the SOAP fault being read. */
interface FaultDraft {
  faultCode: string | undefined;
  faultString: string | undefined;
  responseCode: string | undefined;
  messageText: string | undefined;
  messageXml: Record<string, string> | undefined;
}

/** Attribute slots a {@link StartTag} starts with (more than EWS puts on one element). */
const START_TAG_SLOTS = 16;

/**
 * A start tag: its qualified name and its attributes by qualified name, in the order read. The
 * parser reuses one object for every tag (nothing here keeps it past {@link EnvelopeReader.openTag}),
 * and an EWS element has a handful of attributes, so a look-up is a scan of `count` names.
 */
export class StartTag {
  name = '';
  count = 0;
  // With room for the attributes EWS writes, holding strings from the start (see stringSlots).
  readonly names: string[] = stringSlots(START_TAG_SLOTS);
  readonly values: string[] = stringSlots(START_TAG_SLOTS);

  /** The value of the attribute named `name` (its qualified name), if the tag has one. */
  attribute(name: string): string | undefined {
    const names = this.names;
    for (let k = 0; k < this.count; k++) if (names[k] === name) return this.values[k];
    return undefined;
  }
}

/**
 * `list` with `item` added at its end: `[item]` when there is no list yet. The reader's lists of
 * objects are made this way rather than as `[]` and pushed to: an empty literal has small-integer
 * elements and changes map at its first push, and V8 threw away the parser's optimized code
 * (mid-stream) when it met a list in the other map than the one it was compiled for.
 */
function appended<T extends object>(list: T[] | undefined, item: T): T[] {
  if (list === undefined) return [item];
  list.push(item);
  return list;
}

/** An unprefixed attribute (unprefixed attributes are in no namespace, which is where EWS puts them). */
function attr(tag: StartTag, name: string): string | undefined {
  return tag.attribute(name);
}

function readId(tag: StartTag): Id {
  const id = attr(tag, 'Id');
  if (id === undefined) throw new EwsParseError(`<${tag.name}> has no Id attribute`);
  if (trimXmlWhitespace(id) === '') throw new EwsProtocolError(`${tag.name}/@Id`, `<${tag.name}> has an empty Id attribute`);
  const changeKey = attr(tag, 'ChangeKey');
  return changeKey === undefined ? { id } : { id, changeKey };
}

/**
 * `text` (already trimmed), or an {@link EwsProtocolError} when it is empty: the value is one the
 * protocol needs (an id, a watermark), and an empty one must never be stored or sent back.
 * `inError`: the value is in a `ResponseClass="Error"` message, where Exchange writes empty
 * elements (`<m:SyncState/>`) and nothing is used but the error: kept as it is.
 */
function required(text: string, element: string, inError: boolean, action: 'resubscribe' | 'resubscribe-without-watermark' = 'resubscribe'): string {
  if (text === '' && !inError) throw new EwsProtocolError(element, `<${element}> is empty`, { action });
  return text;
}

function parseBoolean(text: string, element: string): boolean {
  const t = text.trim();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw new EwsParseError(`<${element}> is not a boolean: ${JSON.stringify(t.slice(0, 40))}`);
}

function parseInteger(text: string): number | undefined {
  const t = text.trim();
  if (!/^[+-]?\d{1,15}$/.test(t)) return undefined;
  return Number(t);
}

/** Trims only XML's four whitespace characters: `String#trim` would also eat U+00A0, U+FEFF… from ids. */
function trimXmlWhitespace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isXmlSpace(text.charCodeAt(start))) start++;
  while (end > start && isXmlSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isXmlWhitespace(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/**
 * Receives the SAX events of a stream of envelopes (namespace-aware tags, the text of leaf
 * elements) and returns each {@link EwsEnvelope} when its closing tag is read. The caller checks
 * that a depth-0 element is a SOAP `Envelope` before passing it in.
 */
export class EnvelopeReader {
  /** Open frames, innermost last. Empty between envelopes. */
  private readonly frames: number[] = [];
  /** Depth inside a subtree being skipped (0 = not skipping). */
  private skipDepth = 0;
  /** Target of the text of the open leaf element (0 = not in a leaf). */
  private leaf = 0;
  private leafName = '';
  private leafKey = '';
  private text = '';

  /** The last ServerVersionInfo read and the attributes it was read from. */
  private lastVersionTag: VersionTag | undefined;

  // The envelope being read.
  private serverVersion: ServerVersionInfo | undefined;
  private body: EwsBody | undefined;
  private sawBodyElement = false;
  private sawBody = false;
  private operation = '';
  /** `undefined` until the first (see {@link appended}). */
  private messages: ResponseMessage[] | undefined;
  private msg: MessageDraft | undefined;
  private fault: FaultDraft | undefined;
  private messageXml: Record<string, string> | undefined;
  private subscriptionStatus: SubscriptionStatus | undefined;

  // The notification being read.
  private nSubscriptionId: string | undefined;
  private nPreviousWatermark: string | undefined;
  private nMoreEvents = false;
  /**
   * Its events; none yet: `undefined`. This and the other lists the reader fills are made as
   * `[first]` (see {@link appended}), never as `[]` and pushed to.
   */
  private nEvents: NotificationEvent[] | undefined;

  // The event being read.
  private eType: EventTypeName = 'Status';
  private eElement = '';
  private eWatermark: string | undefined;
  private eTimeStamp: string | undefined;
  private eItemId: Id | undefined;
  private eFolderId: Id | undefined;
  private eParentFolderId: Id | undefined;
  private eOldItemId: Id | undefined;
  private eOldFolderId: Id | undefined;
  private eOldParentFolderId: Id | undefined;
  private eUnreadCount: number | undefined;

  // The SyncFolderItems change being read.
  private cType: ChangeType = 'Create';
  private cItemId: Id | undefined;
  private cIsRead: boolean | undefined;
  private cItemClass: string | undefined;
  private cParentFolderId: Id | undefined;

  /** Element depth: 0 between envelopes. */
  get depth(): number {
    return this.frames.length + this.skipDepth;
  }

  /**
   * A start tag, with its resolved namespace URI (`''` = none) and local name. At depth 0 the
   * caller has checked that it is a SOAP `Envelope`.
   */
  openTag(uri: string, local: string, tag: StartTag): void {
    if (this.skipDepth > 0) {
      this.skipDepth++;
      return;
    }
    const frames = this.frames;
    const parent = frames.length === 0 ? 0 : (frames[frames.length - 1] as number);
    let next = 0;
    switch (parent) {
      case 0:
        this.startEnvelope();
        next = F_ENVELOPE;
        break;
      case F_ENVELOPE:
        if (uri === SOAP_NS) {
          if (local === 'Body') {
            this.sawBodyElement = true;
            next = F_BODY;
          } else if (local === 'Header') next = F_HEADER;
        }
        break;
      case F_HEADER:
        if (uri === T_NS && local === 'ServerVersionInfo') this.serverVersion = this.readServerVersion(tag);
        break;
      case F_BODY:
        next = this.openBodyChild(uri, local, tag.name);
        break;
      case F_RESPONSE:
        if (uri === M_NS && local === 'ResponseMessages') next = F_RESPONSE_MESSAGES;
        break;
      case F_RESPONSE_MESSAGES:
        if (uri === M_NS) {
          this.startMessage(local, tag);
          next = F_MESSAGE;
        }
        break;
      case F_MESSAGE:
        if (uri === M_NS) next = this.openMessageChild(local);
        // As in streaming Notifications, accept the Notification in either EWS namespace.
        else if (uri === T_NS && local === 'Notification') next = this.openMessageChild(local);
        break;
      case F_NOTIFICATIONS:
        if (local === 'Notification' && (uri === M_NS || uri === T_NS)) next = this.startNotification();
        break;
      case F_NOTIFICATION:
        if (uri === T_NS) next = this.openNotificationChild(local, tag);
        break;
      case F_EVENT:
        if (uri === T_NS) next = this.openEventChild(local, tag);
        break;
      case F_ERROR_SUB_IDS:
        if (local === 'SubscriptionId') next = this.startLeaf(L_ERROR_SUBSCRIPTION_ID, local);
        break;
      case F_CHANGES:
        if (uri === T_NS) {
          const type = CHANGE_TYPES[local];
          if (type !== undefined) {
            this.cType = type;
            this.cItemId = undefined;
            this.cIsRead = undefined;
            this.cItemClass = undefined;
            this.cParentFolderId = undefined;
            next = F_CHANGE;
          }
        }
        break;
      case F_CHANGE:
        if (uri === T_NS) {
          if (local === 'ItemId') this.cItemId = readId(tag);
          else if (local === 'IsRead') next = this.startLeaf(L_C_IS_READ, local);
          else if (this.cType === 'Create' || this.cType === 'Update') {
            this.cItemClass ??= local;
            next = F_CHANGE_ITEM;
          }
        }
        break;
      case F_CHANGE_ITEM:
        if (uri === T_NS && local === 'ItemId' && this.cItemId === undefined) this.cItemId = readId(tag);
        else if (uri === T_NS && local === 'ParentFolderId' && this.cParentFolderId === undefined) this.cParentFolderId = readId(tag);
        break;
      case F_FAULT:
        // SOAP 1.1 fault children are unqualified; some stacks qualify them, so go by local name.
        if (local === 'faultcode') next = this.startLeaf(L_FAULT_CODE, local);
        else if (local === 'faultstring') next = this.startLeaf(L_FAULT_STRING, local);
        else if (local === 'detail') next = F_DETAIL;
        break;
      case F_DETAIL:
        // Exchange writes ResponseCode/Message in the errors namespace but MessageXml in either
        // the errors or the types namespace, so the detail goes by local name.
        if (local === 'ResponseCode') next = this.startLeaf(L_DETAIL_CODE, local);
        else if (local === 'Message') next = this.startLeaf(L_DETAIL_MESSAGE, local);
        else if (local === 'MessageXml') next = this.startMessageXml();
        break;
      case F_MSGXML: {
        const name = local === 'Value' ? attr(tag, 'Name') : undefined;
        next = this.startLeaf(L_MSGXML_VALUE, local);
        this.leafKey = name ?? local;
        break;
      }
      case F_SN_RESULT:
        if (uri === M_NS && local === 'SubscriptionStatus') next = this.startLeaf(L_SUBSCRIPTION_STATUS, local);
        break;
      default:
        // F_LEAF: structured content inside a simple value is skipped.
        break;
    }
    if (next === 0) this.skipDepth = 1;
    else frames.push(next);
  }

  /**
   * Back to depth 0, forgetting the envelope being read (the next start tag starts a new one).
   * Envelopes already returned are not affected. (The parser replays an envelope through saxes
   * after its fast path gave up on it; see parser.ts.)
   */
  reset(): void {
    this.frames.length = 0;
    this.skipDepth = 0;
    this.leaf = 0;
    this.leafName = '';
    this.leafKey = '';
    this.text = '';
  }

  /** Text (or CDATA) content. Only the text of leaf elements is kept. */
  onText(text: string): void {
    if (this.leaf !== 0 && this.skipDepth === 0) {
      this.text += text;
    } else if (this.frames.length === 0 && this.skipDepth === 0 && !isXmlWhitespace(text)) {
      throw new EwsParseError(`Unexpected text between envelopes: ${JSON.stringify(text.trim().slice(0, 40))}`);
    }
  }

  /** An end tag; returns the envelope when it was the envelope's own. */
  closeTag(): EwsEnvelope | undefined {
    if (this.skipDepth > 0) {
      this.skipDepth--;
      return undefined;
    }
    const kind = this.frames.pop();
    switch (kind) {
      case F_LEAF:
        this.endLeaf();
        return undefined;
      case F_EVENT:
        this.endEvent();
        return undefined;
      case F_CHANGE:
        this.endChange();
        return undefined;
      case F_NOTIFICATION:
        this.endNotification();
        return undefined;
      case F_MESSAGE:
        this.endMessage();
        return undefined;
      case F_MSGXML:
        this.messageXml = undefined;
        return undefined;
      case F_RESPONSE:
        this.body = { type: 'response', operation: this.operation, messages: this.messages ?? [] };
        return undefined;
      case F_FAULT:
        this.endFault();
        return undefined;
      case F_SN_RESULT:
        if (this.subscriptionStatus === undefined) {
          throw new EwsParseError('SendNotificationResult has no SubscriptionStatus OK or Unsubscribe');
        }
        this.body = { type: 'sendNotificationResult', subscriptionStatus: this.subscriptionStatus };
        return undefined;
      case F_ENVELOPE:
        return this.endEnvelope();
      default:
        return undefined;
    }
  }

  // --- envelope -------------------------------------------------------------------------------

  /** Every envelope of a stream repeats its ServerVersionInfo: the same attributes give the same (frozen) object. */
  private readServerVersion(tag: StartTag): ServerVersionInfo {
    const major = attr(tag, 'MajorVersion');
    const minor = attr(tag, 'MinorVersion');
    const majorBuild = attr(tag, 'MajorBuildNumber');
    const minorBuild = attr(tag, 'MinorBuildNumber');
    const version = attr(tag, 'Version');
    const seen = this.lastVersionTag;
    if (
      seen !== undefined &&
      major === seen.major &&
      minor === seen.minor &&
      majorBuild === seen.majorBuild &&
      minorBuild === seen.minorBuild &&
      version === seen.version
    ) {
      return seen.info;
    }
    const info = Object.freeze(parseServerVersion(tag));
    this.lastVersionTag = { major, minor, majorBuild, minorBuild, version, info };
    return info;
  }

  private startEnvelope(): void {
    this.serverVersion = undefined;
    this.body = undefined;
    this.sawBodyElement = false;
    this.sawBody = false;
    this.messages = undefined;
    this.msg = undefined;
    this.fault = undefined;
    this.messageXml = undefined;
    this.subscriptionStatus = undefined;
  }

  private endEnvelope(): EwsEnvelope {
    const body = this.body;
    if (body === undefined) {
      throw new EwsParseError(this.sawBodyElement ? 'The SOAP Body is empty' : 'The SOAP Envelope has no Body');
    }
    this.body = undefined;
    this.messages = undefined;
    return this.serverVersion === undefined ? { body } : { serverVersion: this.serverVersion, body };
  }

  private openBodyChild(uri: string, local: string, qname: string): number {
    // A Body holds one payload element; anything after it is not ours to interpret.
    if (this.sawBody) return 0;
    this.sawBody = true;
    if (uri === SOAP_NS && local === 'Fault') {
      this.fault = {
        faultCode: undefined,
        faultString: undefined,
        responseCode: undefined,
        messageText: undefined,
        messageXml: undefined,
      };
      return F_FAULT;
    }
    if (uri === M_NS) {
      if (local === 'SendNotificationResult') return F_SN_RESULT;
      if (local === 'SendNotification') {
        this.operation = 'SendNotification';
        return F_RESPONSE;
      }
      if (local.length > 8 && local.endsWith('Response')) {
        this.operation = operationOf(local);
        return F_RESPONSE;
      }
    }
    throw new EwsParseError(
      `Unsupported SOAP Body content <${qname}>${uri === '' ? ' (no namespace)' : ` in namespace ${uri}`}`,
    );
  }

  // --- response messages ----------------------------------------------------------------------

  private startMessage(local: string, tag: StartTag): void {
    const responseClass = attr(tag, 'ResponseClass');
    if (responseClass !== 'Success' && responseClass !== 'Warning' && responseClass !== 'Error') {
      throw new EwsParseError(
        `<${tag.name}> has ${responseClass === undefined ? 'no ResponseClass' : `an unknown ResponseClass ${JSON.stringify(responseClass)}`}`,
      );
    }
    this.msg = {
      kind: MESSAGE_KINDS[local] ?? K_OTHER,
      elementName: local,
      responseClass,
      responseCode: undefined,
      messageText: undefined,
      messageXml: undefined,
      descriptiveLinkKey: undefined,
      notifications: undefined,
      errorSubscriptionIds: [],
      connectionStatus: undefined,
      subscriptionId: undefined,
      watermark: undefined,
      syncState: undefined,
      includesLastItemInRange: undefined,
      changes: [],
    };
  }

  private openMessageChild(local: string): number {
    const msg = this.msg as MessageDraft;
    switch (local) {
      case 'ResponseCode':
        return this.startLeaf(L_RESPONSE_CODE, local);
      case 'MessageText':
        return this.startLeaf(L_MESSAGE_TEXT, local);
      case 'DescriptiveLinkKey':
        return this.startLeaf(L_DESCRIPTIVE_LINK_KEY, local);
      case 'MessageXml':
        return this.startMessageXml();
      default:
        break;
    }
    switch (msg.kind) {
      case K_GET_STREAMING_EVENTS:
        if (local === 'Notifications') return F_NOTIFICATIONS;
        if (local === 'ErrorSubscriptionIds') return F_ERROR_SUB_IDS;
        if (local === 'ConnectionStatus') return this.startLeaf(L_CONNECTION_STATUS, local);
        return 0;
      case K_GET_EVENTS:
      case K_SEND_NOTIFICATION:
        return local === 'Notification' ? this.startNotification() : 0;
      case K_SUBSCRIBE:
        if (local === 'SubscriptionId') return this.startLeaf(L_SUBSCRIPTION_ID, local);
        if (local === 'Watermark') return this.startLeaf(L_WATERMARK, local);
        return 0;
      case K_SYNC_FOLDER_ITEMS:
        if (local === 'SyncState') return this.startLeaf(L_SYNC_STATE, local);
        if (local === 'IncludesLastItemInRange') return this.startLeaf(L_INCLUDES_LAST, local);
        if (local === 'Changes') return F_CHANGES;
        return 0;
      default:
        return 0;
    }
  }

  private startMessageXml(): number {
    const xml: Record<string, string> = {};
    this.messageXml = xml;
    if (this.fault !== undefined) this.fault.messageXml = xml;
    else if (this.msg !== undefined) this.msg.messageXml = xml;
    return F_MSGXML;
  }

  private endMessage(): void {
    const d = this.msg as MessageDraft;
    this.msg = undefined;
    if (
      d.kind === K_GET_STREAMING_EVENTS &&
      d.messageText === undefined &&
      d.messageXml === undefined &&
      d.descriptiveLinkKey === undefined
    ) {
      // The message of every streamed envelope: built in one go (same keys, same order as below).
      const responseClass = d.responseClass;
      const responseCode = d.responseCode ?? (responseClass === 'Success' ? 'NoError' : '');
      this.messages = appended(
        this.messages,
        d.connectionStatus === undefined
          ? {
              kind: 'GetStreamingEvents',
              responseClass,
              responseCode,
              notifications: d.notifications ?? [],
              errorSubscriptionIds: d.errorSubscriptionIds,
            }
          : {
              kind: 'GetStreamingEvents',
              responseClass,
              responseCode,
              notifications: d.notifications ?? [],
              errorSubscriptionIds: d.errorSubscriptionIds,
              connectionStatus: d.connectionStatus,
            },
      );
      return;
    }
    const base: {
      responseClass: ResponseClass;
      responseCode: string;
      messageText?: string;
      messageXml?: Readonly<Record<string, string>>;
      descriptiveLinkKey?: number;
    } = {
      responseClass: d.responseClass,
      // The schema makes ResponseCode optional; on Success its absence means NoError.
      responseCode: d.responseCode ?? (d.responseClass === 'Success' ? 'NoError' : ''),
    };
    if (d.messageText !== undefined) base.messageText = d.messageText;
    if (d.messageXml !== undefined) base.messageXml = d.messageXml;
    if (d.descriptiveLinkKey !== undefined) base.descriptiveLinkKey = d.descriptiveLinkKey;
    let message: ResponseMessage;
    switch (d.kind) {
      case K_GET_STREAMING_EVENTS:
        message =
          d.connectionStatus === undefined
            ? {
                kind: 'GetStreamingEvents',
                ...base,
                notifications: d.notifications ?? [],
                errorSubscriptionIds: d.errorSubscriptionIds,
              }
            : {
                kind: 'GetStreamingEvents',
                ...base,
                notifications: d.notifications ?? [],
                errorSubscriptionIds: d.errorSubscriptionIds,
                connectionStatus: d.connectionStatus,
              };
        break;
      case K_SUBSCRIBE: {
        const m: { kind: 'Subscribe'; subscriptionId?: string; watermark?: string } & typeof base = {
          kind: 'Subscribe',
          ...base,
        };
        if (d.subscriptionId !== undefined) m.subscriptionId = d.subscriptionId;
        if (d.watermark !== undefined) m.watermark = d.watermark;
        message = m;
        break;
      }
      case K_GET_EVENTS:
      case K_SEND_NOTIFICATION: {
        const kind = d.kind === K_GET_EVENTS ? ('GetEvents' as const) : ('SendNotification' as const);
        const n = d.notifications?.[0];
        message = n === undefined ? { kind, ...base } : { kind, ...base, notification: n };
        break;
      }
      case K_UNSUBSCRIBE:
        message = { kind: 'Unsubscribe', ...base };
        break;
      case K_SYNC_FOLDER_ITEMS: {
        const m: {
          kind: 'SyncFolderItems';
          syncState?: string;
          includesLastItemInRange?: boolean;
          changes: SyncItemChange[];
        } & typeof base = { kind: 'SyncFolderItems', ...base, changes: d.changes };
        if (d.syncState !== undefined) m.syncState = d.syncState;
        if (d.includesLastItemInRange !== undefined) m.includesLastItemInRange = d.includesLastItemInRange;
        message = m;
        break;
      }
      default:
        message = { kind: 'Other', ...base, elementName: d.elementName };
    }
    this.messages = appended(this.messages, message);
  }

  // --- notifications and events ---------------------------------------------------------------

  private startNotification(): number {
    this.nSubscriptionId = undefined;
    this.nPreviousWatermark = undefined;
    this.nMoreEvents = false;
    this.nEvents = undefined;
    return F_NOTIFICATION;
  }

  private openNotificationChild(local: string, tag: StartTag): number {
    switch (local) {
      case 'SubscriptionId':
        return this.startLeaf(L_N_SUBSCRIPTION_ID, local);
      case 'PreviousWatermark':
        return this.startLeaf(L_N_PREVIOUS_WATERMARK, local);
      case 'MoreEvents':
        return this.startLeaf(L_N_MORE_EVENTS, local);
      default: {
        const type = EVENT_TYPES[local];
        if (type === undefined) return 0;
        this.eType = type;
        this.eElement = tag.name;
        this.eWatermark = undefined;
        this.eTimeStamp = undefined;
        this.eItemId = undefined;
        this.eFolderId = undefined;
        this.eParentFolderId = undefined;
        this.eOldItemId = undefined;
        this.eOldFolderId = undefined;
        this.eOldParentFolderId = undefined;
        this.eUnreadCount = undefined;
        return F_EVENT;
      }
    }
  }

  private endNotification(): void {
    const subscriptionId = this.nSubscriptionId;
    if (subscriptionId === undefined) throw new EwsParseError('A Notification has no SubscriptionId');
    const n: PushNotification =
      this.nPreviousWatermark === undefined
        ? { subscriptionId, moreEvents: this.nMoreEvents, events: this.nEvents ?? [] }
        : {
            subscriptionId,
            previousWatermark: this.nPreviousWatermark,
            moreEvents: this.nMoreEvents,
            events: this.nEvents ?? [],
          };
    this.nEvents = undefined;
    const msg = this.msg;
    if (msg !== undefined) msg.notifications = appended(msg.notifications, n);
  }

  private openEventChild(local: string, tag: StartTag): number {
    const which = EVENT_ID_ELEMENTS[local];
    if (which !== undefined) {
      const id = readId(tag);
      switch (which) {
        case ID_ITEM:
          this.eItemId = id;
          break;
        case ID_FOLDER:
          this.eFolderId = id;
          break;
        case ID_PARENT:
          this.eParentFolderId = id;
          break;
        case ID_OLD_ITEM:
          this.eOldItemId = id;
          break;
        case ID_OLD_FOLDER:
          this.eOldFolderId = id;
          break;
        default:
          this.eOldParentFolderId = id;
      }
      return 0;
    }
    if (local === 'Watermark') return this.startLeaf(L_E_WATERMARK, local);
    if (local === 'TimeStamp') return this.startLeaf(L_E_TIMESTAMP, local);
    if (local === 'UnreadCount') return this.startLeaf(L_E_UNREAD_COUNT, local);
    return 0;
  }

  private endEvent(): void {
    const type = this.eType;
    let event: NotificationEvent;
    if (type === 'Status') {
      event = this.eWatermark === undefined ? { type } : { type, watermark: this.eWatermark };
    } else {
      const el = this.eElement;
      const timeStamp = this.eTimeStamp;
      const parentFolderId = this.eParentFolderId;
      if (timeStamp === undefined) throw new EwsParseError(`<${el}> has no TimeStamp`);
      if (parentFolderId === undefined) throw new EwsParseError(`<${el}> has no ParentFolderId`);
      if ((this.eItemId === undefined) === (this.eFolderId === undefined)) {
        throw new EwsParseError(`<${el}> must have exactly one of ItemId and FolderId`);
      }
      if (type !== 'Moved' && type !== 'Copied' && this.eWatermark === undefined) {
        // The events of a stream, made in one go with their final shape: an object literal gets
        // exactly its own properties in the object, so each one added later would need a separate
        // property store (an allocation per event). Same keys in the same order as below.
        const unreadCount = this.eUnreadCount;
        const itemId = this.eItemId;
        if (itemId !== undefined) {
          event = (
            unreadCount === undefined ? { type, timeStamp, parentFolderId, itemId } : { type, timeStamp, parentFolderId, itemId, unreadCount }
          ) as NotificationEvent;
        } else {
          const folderId = this.eFolderId as Id;
          event = (
            unreadCount === undefined ? { type, timeStamp, parentFolderId, folderId } : { type, timeStamp, parentFolderId, folderId, unreadCount }
          ) as NotificationEvent;
        }
        this.nEvents = appended(this.nEvents, event);
        return;
      }
      const itemId = this.eItemId;
      const oldItemId = this.eOldItemId;
      const oldParentFolderId = this.eOldParentFolderId;
      if (this.eWatermark === undefined && itemId !== undefined && oldItemId !== undefined && this.eOldFolderId === undefined && oldParentFolderId !== undefined) {
        // An item moved or copied (type is Moved or Copied here), likewise in one go.
        this.nEvents = appended(this.nEvents, { type, timeStamp, parentFolderId, itemId, oldItemId, oldParentFolderId } as NotificationEvent);
        return;
      }
      const e: {
        type: EventTypeName;
        watermark?: string;
        timeStamp: string;
        itemId?: Id;
        folderId?: Id;
        parentFolderId: Id;
        oldItemId?: Id;
        oldFolderId?: Id;
        oldParentFolderId?: Id;
        unreadCount?: number;
      } = { type, timeStamp, parentFolderId };
      if (this.eWatermark !== undefined) e.watermark = this.eWatermark;
      if (this.eItemId !== undefined) e.itemId = this.eItemId;
      else e.folderId = this.eFolderId;
      if (type === 'Moved' || type === 'Copied') {
        if (this.eOldParentFolderId === undefined) throw new EwsParseError(`<${el}> has no OldParentFolderId`);
        if (this.eOldItemId !== undefined) e.oldItemId = this.eOldItemId;
        if (this.eOldFolderId !== undefined) e.oldFolderId = this.eOldFolderId;
        e.oldParentFolderId = this.eOldParentFolderId;
      } else if (this.eUnreadCount !== undefined) {
        e.unreadCount = this.eUnreadCount;
      }
      event = e as NotificationEvent;
    }
    this.nEvents = appended(this.nEvents, event);
  }

  private endChange(): void {
    const itemId = this.cItemId;
    // A change without an ItemId carries nothing a caller could act on (the schema requires one).
    if (itemId === undefined) return;
    const change: SyncItemChange = {
      type: this.cType,
      itemId,
      ...(this.cType === 'ReadFlagChange' && this.cIsRead !== undefined ? { isRead: this.cIsRead } : {}),
      ...(this.cItemClass === undefined ? {} : { itemClass: this.cItemClass }),
      ...(this.cParentFolderId === undefined ? {} : { parentFolderId: this.cParentFolderId }),
    };
    this.msg?.changes.push(change);
  }

  // --- fault ----------------------------------------------------------------------------------

  private endFault(): void {
    const f = this.fault as FaultDraft;
    const fault: {
      faultCode: string;
      faultString: string;
      responseCode?: string;
      messageText?: string;
      messageXml?: Readonly<Record<string, string>>;
    } = { faultCode: f.faultCode ?? '', faultString: f.faultString ?? '' };
    if (f.responseCode !== undefined) fault.responseCode = f.responseCode;
    if (f.messageText !== undefined) fault.messageText = f.messageText;
    if (f.messageXml !== undefined) fault.messageXml = f.messageXml;
    this.body = { type: 'fault', fault: fault satisfies SoapFault };
  }

  // --- leaves ---------------------------------------------------------------------------------

  private startLeaf(target: number, name: string): number {
    this.leaf = target;
    this.leafName = name;
    this.text = '';
    return F_LEAF;
  }

  private endLeaf(): void {
    const raw = this.text;
    const target = this.leaf;
    this.leaf = 0;
    this.text = '';
    // Free text keeps its exact characters; ids, codes, numbers and flags are trimmed.
    switch (target) {
      case L_FAULT_STRING:
        (this.fault as FaultDraft).faultString = raw;
        return;
      case L_DETAIL_MESSAGE:
        (this.fault as FaultDraft).messageText = raw;
        return;
      case L_MESSAGE_TEXT:
        (this.msg as MessageDraft).messageText = raw;
        return;
      default:
        break;
    }
    const text = trimXmlWhitespace(raw);
    const inError = this.msg?.responseClass === 'Error';
    switch (target) {
      case L_FAULT_CODE:
        (this.fault as FaultDraft).faultCode = text;
        break;
      case L_DETAIL_CODE:
        (this.fault as FaultDraft).responseCode = text;
        break;
      case L_MSGXML_VALUE: {
        const xml = this.messageXml as Record<string, string>;
        // `Value[@Name]` pairs are the documented shape; other simple elements are kept by their
        // local name unless a Value already claimed it.
        if (xml[this.leafKey] === undefined) xml[this.leafKey] = text;
        break;
      }
      case L_RESPONSE_CODE:
        (this.msg as MessageDraft).responseCode = text;
        break;
      case L_DESCRIPTIVE_LINK_KEY:
        (this.msg as MessageDraft).descriptiveLinkKey = parseInteger(text);
        break;
      case L_SUBSCRIPTION_ID:
        (this.msg as MessageDraft).subscriptionId = required(text, this.leafName, inError);
        break;
      case L_WATERMARK:
        (this.msg as MessageDraft).watermark = required(text, this.leafName, inError, 'resubscribe-without-watermark');
        break;
      case L_CONNECTION_STATUS:
        // Unknown values are dropped rather than guessed at (forward compatibility).
        if (text === 'OK' || text === 'Closed') (this.msg as MessageDraft).connectionStatus = text;
        break;
      case L_ERROR_SUBSCRIPTION_ID:
        // Only Error messages carry these; an empty one would name no subscription.
        (this.msg as MessageDraft).errorSubscriptionIds.push(required(text, this.leafName, false));
        break;
      case L_SYNC_STATE:
        (this.msg as MessageDraft).syncState = required(text, this.leafName, inError, 'resubscribe-without-watermark');
        break;
      case L_INCLUDES_LAST:
        (this.msg as MessageDraft).includesLastItemInRange = parseBoolean(text, this.leafName);
        break;
      case L_N_SUBSCRIPTION_ID:
        this.nSubscriptionId = required(text, this.leafName, inError);
        break;
      case L_N_PREVIOUS_WATERMARK:
        this.nPreviousWatermark = required(text, this.leafName, inError, 'resubscribe-without-watermark');
        break;
      case L_N_MORE_EVENTS:
        this.nMoreEvents = parseBoolean(text, this.leafName);
        break;
      case L_E_WATERMARK:
        this.eWatermark = required(text, this.leafName, inError, 'resubscribe-without-watermark');
        break;
      case L_E_TIMESTAMP:
        this.eTimeStamp = required(text, this.leafName, inError);
        break;
      case L_E_UNREAD_COUNT: {
        const n = parseInteger(text);
        if (n === undefined) throw new EwsParseError(`<UnreadCount> is not an integer: ${JSON.stringify(text.slice(0, 40))}`);
        this.eUnreadCount = n;
        break;
      }
      case L_C_IS_READ:
        this.cIsRead = parseBoolean(text, this.leafName);
        break;
      case L_SUBSCRIPTION_STATUS:
        if (text === 'OK' || text === 'Unsubscribe') this.subscriptionStatus = text;
        else throw new EwsParseError(`Unknown SubscriptionStatus ${JSON.stringify(text.slice(0, 40))}`);
        break;
      default:
        break;
    }
  }
}

function parseServerVersion(tag: StartTag): ServerVersionInfo {
  const v: {
    majorVersion?: number;
    minorVersion?: number;
    majorBuildNumber?: number;
    minorBuildNumber?: number;
    version?: string;
  } = {};
  const major = integerAttr(tag, 'MajorVersion');
  const minor = integerAttr(tag, 'MinorVersion');
  const majorBuild = integerAttr(tag, 'MajorBuildNumber');
  const minorBuild = integerAttr(tag, 'MinorBuildNumber');
  const version = attr(tag, 'Version');
  if (major !== undefined) v.majorVersion = major;
  if (minor !== undefined) v.minorVersion = minor;
  if (majorBuild !== undefined) v.majorBuildNumber = majorBuild;
  if (minorBuild !== undefined) v.minorBuildNumber = minorBuild;
  if (version !== undefined) v.version = version;
  return v;
}

function integerAttr(tag: StartTag, name: string): number | undefined {
  const s = attr(tag, name);
  return s === undefined ? undefined : parseInteger(s);
}
