/**
 * Builders for the push-notification wire format: the `SendNotification` envelope Exchange POSTs to
 * a push listener, and the `SendNotificationResult` the listener answers with. The soap-forwarder
 * adapter and the simulator use them to speak the legacy push contract.
 *
 * The shape follows what Exchange sends: a `soap11:` envelope whose header carries
 * `t:RequestServerVersion` (the version the subscription was created with), and `m:`/`t:` prefixes
 * declared where Exchange declares them. Some legacy listeners match on those prefixes literally.
 *
 * Watermarks: in the published schema (Exchange 2010 SP1 and later) an event's `t:Watermark` and the
 * notification's `t:PreviousWatermark` are optional. Events from a streaming source have none, so
 * none are written — we never invent one. A listener that needs watermarks (one that stores them,
 * or a strict proxy generated from an older schema) must be fed from a pull or hybrid source,
 * whose events carry real watermarks; a forwarder should say so rather than fabricate them.
 *
 * @packageDocumentation
 */
import type { ExchangeVersion, Id, NotificationEvent, PushNotification, SubscriptionStatus } from '../model.js';
import type { ResponseClass } from './messages.js';
import { EXCHANGE_VERSIONS } from './requests.js';
import { describeValue, requireIntInRange, requireObject, requireString } from '../validate.js';
import { MESSAGES_NS, SOAP_NS, TYPES_NS, XML_DECLARATION, attribute, escapeText, textElement } from './xml.js';

/** Options of {@link buildSendNotification}. */
export interface SendNotificationOptions {
  /**
   * `t:RequestServerVersion/@Version` in the header: Exchange writes the version the push
   * subscription was created with. Default `'Exchange2013'`.
   */
  readonly requestServerVersion?: ExchangeVersion;
  /** `ResponseClass` of the message. Default `'Success'`. */
  readonly responseClass?: ResponseClass;
  /** `m:ResponseCode`. Default `'NoError'`. */
  readonly responseCode?: string;
  /** `m:MessageText`, written only when given. Default: none. */
  readonly messageText?: string;
  /** `m:DescriptiveLinkKey`, written only when given. Default: none. */
  readonly descriptiveLinkKey?: number;
  /** `m:MessageXml` as `t:Value Name="…"` entries, in key order; written only when given. Default: none. */
  readonly messageXml?: Readonly<Record<string, string>>;
}

/** Options of {@link buildSendNotificationError}. */
export interface SendNotificationErrorOptions {
  /** The subscription the error concerns; written as `MessageXml/t:Value[@Name="SubscriptionId"]`. Required. */
  readonly subscriptionId: string;
  /** `m:ResponseCode`. Default `'ErrorReadEventsFailed'`. */
  readonly responseCode?: string;
  /** `m:MessageText`. Default: an English sentence in the spirit of Exchange's (the exact text is localised by the server). */
  readonly messageText?: string;
  /** `m:DescriptiveLinkKey`. Default `0`, as Exchange writes it. */
  readonly descriptiveLinkKey?: number;
  /** Further `MessageXml` values after `SubscriptionId`. Default: none. */
  readonly messageXml?: Readonly<Record<string, string>>;
  /** As in {@link SendNotificationOptions}. Default `'Exchange2013'`. */
  readonly requestServerVersion?: ExchangeVersion;
}

const RESPONSE_CLASSES: ReadonlySet<string> = new Set<ResponseClass>(['Success', 'Warning', 'Error']);
const VERSION_SET: ReadonlySet<string> = new Set(EXCHANGE_VERSIONS);
// ResponseCodeType is an enumeration of identifiers; checking the shape keeps new codes usable.
const RESPONSE_CODE = /^[A-Za-z][A-Za-z0-9]*$/;
// xs:dateTime (what libxml2 checks, minus calendar arithmetic): 2024-05-01T10:20:30.123Z
const XS_DATE_TIME = /^-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const XS_INT_MIN = -2147483648;
const XS_INT_MAX = 2147483647;

const OBJECT_EVENT_TYPES: ReadonlySet<string> = new Set(['NewMail', 'Created', 'Deleted', 'Modified', 'FreeBusyChanged']);
const MOVED_COPIED: ReadonlySet<string> = new Set(['Moved', 'Copied']);

function version(value: unknown): ExchangeVersion {
  if (typeof value !== 'string' || !VERSION_SET.has(value)) {
    throw new RangeError(`requestServerVersion must be one of ${EXCHANGE_VERSIONS.join(', ')} (got ${describeValue(value)})`);
  }
  return value as ExchangeVersion;
}

function header(requestServerVersion: unknown): string {
  return `<soap11:Header><t:RequestServerVersion xmlns:t="${TYPES_NS}" Version="${version(requestServerVersion ?? 'Exchange2013')}"/></soap11:Header>`;
}

function idElement(qname: string, value: unknown, field: string): string {
  const obj = requireObject(value, field) as Partial<Id>;
  const id = requireString(obj.id, `${field}.id`);
  const changeKey = obj.changeKey === undefined ? undefined : requireString(obj.changeKey, `${field}.changeKey`);
  return `<${qname}${attribute('Id', id, `${field}.id`)}${attribute('ChangeKey', changeKey, `${field}.changeKey`)}/>`;
}

/** Exactly one of two id fields (item vs folder), written as the matching element. */
function oneOf(obj: Readonly<Record<string, unknown>>, field: string, item: string, folder: string, itemQ: string, folderQ: string): string {
  const hasItem = obj[item] !== undefined;
  const hasFolder = obj[folder] !== undefined;
  if (hasItem === hasFolder) throw new RangeError(`${field} must have exactly one of ${item} and ${folder}`);
  return hasItem ? idElement(itemQ, obj[item], `${field}.${item}`) : idElement(folderQ, obj[folder], `${field}.${folder}`);
}

function watermarkElement(value: unknown, field: string): string {
  return value === undefined ? '' : textElement('t:Watermark', requireString(value, field), field);
}

function eventElement(event: NotificationEvent, field: string): string {
  const obj = requireObject(event, field);
  const type = obj.type;
  if (type === 'Status') {
    return `<t:StatusEvent>${watermarkElement(obj.watermark, `${field}.watermark`)}</t:StatusEvent>`;
  }
  const moved = typeof type === 'string' && MOVED_COPIED.has(type);
  if (typeof type !== 'string' || (!moved && !OBJECT_EVENT_TYPES.has(type))) {
    throw new RangeError(`${field}.type must be an event type or 'Status' (got ${describeValue(type)})`);
  }
  // Fields the wire cannot carry for this type would be lost on the way: refuse them instead.
  if (!moved && (obj.oldItemId !== undefined || obj.oldFolderId !== undefined || obj.oldParentFolderId !== undefined)) {
    throw new RangeError(`${field}: oldItemId/oldFolderId/oldParentFolderId are only allowed on Moved and Copied events`);
  }
  if (obj.unreadCount !== undefined && type !== 'Modified') {
    throw new RangeError(`${field}.unreadCount is only allowed on Modified events`);
  }
  const timeStamp = requireString(obj.timeStamp, `${field}.timeStamp`);
  if (!XS_DATE_TIME.test(timeStamp)) {
    throw new RangeError(`${field}.timeStamp must be an xs:dateTime such as 2024-05-01T10:20:30Z (got ${describeValue(timeStamp)})`);
  }
  let xml =
    watermarkElement(obj.watermark, `${field}.watermark`) +
    textElement('t:TimeStamp', timeStamp) +
    oneOf(obj, field, 'itemId', 'folderId', 't:ItemId', 't:FolderId') +
    idElement('t:ParentFolderId', obj.parentFolderId, `${field}.parentFolderId`);
  if (moved) {
    xml +=
      oneOf(obj, field, 'oldItemId', 'oldFolderId', 't:OldItemId', 't:OldFolderId') +
      idElement('t:OldParentFolderId', obj.oldParentFolderId, `${field}.oldParentFolderId`);
  } else if (obj.unreadCount !== undefined) {
    const count = requireIntInRange(obj.unreadCount, `${field}.unreadCount`, XS_INT_MIN, XS_INT_MAX);
    xml += `<t:UnreadCount>${count}</t:UnreadCount>`;
  }
  return `<t:${type}Event>${xml}</t:${type}Event>`;
}

/** `t:`-prefixed `m:Notification` element for one notification. */
function notificationElement(notification: PushNotification): string {
  const n = requireObject(notification, 'notification') as Partial<PushNotification>;
  const subscriptionId = requireString(n.subscriptionId, 'notification.subscriptionId');
  const previous =
    n.previousWatermark === undefined
      ? ''
      : textElement('t:PreviousWatermark', requireString(n.previousWatermark, 'notification.previousWatermark'), 'notification.previousWatermark');
  if (typeof n.moreEvents !== 'boolean') {
    throw new TypeError(`notification.moreEvents must be a boolean (got ${describeValue(n.moreEvents)})`);
  }
  const events: unknown = n.events;
  if (!Array.isArray(events)) throw new TypeError(`notification.events must be an array (got ${describeValue(events)})`);
  // NotificationType requires at least one event; an idle notification carries a StatusEvent.
  if (events.length === 0) throw new RangeError('notification.events must not be empty (send a Status event when idle)');
  let body = '';
  events.forEach((event: NotificationEvent, i) => {
    body += eventElement(event, `notification.events[${i}]`);
  });
  return (
    `<m:Notification>${textElement('t:SubscriptionId', subscriptionId, 'notification.subscriptionId')}${previous}` +
    `<t:MoreEvents>${n.moreEvents}</t:MoreEvents>${body}</m:Notification>`
  );
}

/** The `ResponseMessageType` fields, in schema order: MessageText, ResponseCode, DescriptiveLinkKey, MessageXml. */
function responseFields(
  responseCode: unknown,
  messageText: unknown,
  descriptiveLinkKey: unknown,
  messageXml: Readonly<Record<string, string>> | undefined,
): string {
  const code = requireString(responseCode, 'responseCode');
  if (!RESPONSE_CODE.test(code)) throw new RangeError(`responseCode must be an EWS response code name (got ${describeValue(code)})`);
  let xml = messageText === undefined ? '' : textElement('m:MessageText', requireString(messageText, 'messageText'), 'messageText');
  xml += `<m:ResponseCode>${code}</m:ResponseCode>`;
  if (descriptiveLinkKey !== undefined) {
    xml += `<m:DescriptiveLinkKey>${requireIntInRange(descriptiveLinkKey, 'descriptiveLinkKey', XS_INT_MIN, XS_INT_MAX)}</m:DescriptiveLinkKey>`;
  }
  if (messageXml !== undefined) {
    const entries = Object.entries(requireObject(messageXml, 'messageXml'));
    if (entries.length > 0) {
      xml += '<m:MessageXml>';
      for (const [name, value] of entries) {
        const field = `messageXml.${name}`;
        if (name.length === 0) throw new RangeError('messageXml keys must not be empty');
        if (typeof value !== 'string') throw new TypeError(`${field} must be a string (got ${describeValue(value)})`);
        xml += `<t:Value${attribute('Name', name, 'messageXml key')}>${escapeText(value, field)}</t:Value>`;
      }
      xml += '</m:MessageXml>';
    }
  }
  return xml;
}

function sendNotificationEnvelope(requestServerVersion: unknown, responseClass: string, fields: string, notification: string): string {
  return (
    `${XML_DECLARATION}<soap11:Envelope xmlns:soap11="${SOAP_NS}">${header(requestServerVersion)}<soap11:Body>` +
    `<m:SendNotification xmlns:t="${TYPES_NS}" xmlns:m="${MESSAGES_NS}"><m:ResponseMessages>` +
    `<m:SendNotificationResponseMessage ResponseClass="${responseClass}">${fields}${notification}</m:SendNotificationResponseMessage>` +
    `</m:ResponseMessages></m:SendNotification></soap11:Body></soap11:Envelope>`
  );
}

/**
 * The `SendNotification` envelope Exchange POSTs to a push listener, carrying one notification:
 * SubscriptionId, PreviousWatermark (when known), MoreEvents, then the events in the given (wire)
 * order with each field in schema order. Always valid against the published schema.
 *
 * `notification.mailbox` is bridge metadata and has no place on the wire; it is not written.
 * For an error-class push with a notification attached, set `responseClass`/`responseCode` (and
 * `messageText`/`messageXml`) in `options`; for the shape Exchange itself sends on errors, see
 * {@link buildSendNotificationError}.
 *
 * @throws RangeError / TypeError naming the field when the notification cannot be written validly
 *   (no events, an event with both or neither of itemId/folderId, a non-xs:dateTime timeStamp,
 *   a character XML 1.0 forbids, …).
 */
export function buildSendNotification(notification: PushNotification, options: SendNotificationOptions = {}): string {
  requireObject(options, 'options');
  const opts = options;
  const responseClass = opts.responseClass ?? 'Success';
  if (!RESPONSE_CLASSES.has(responseClass)) {
    throw new RangeError(`responseClass must be Success, Warning or Error (got ${describeValue(responseClass)})`);
  }
  const fields = responseFields(opts.responseCode ?? 'NoError', opts.messageText, opts.descriptiveLinkKey, opts.messageXml);
  return sendNotificationEnvelope(opts.requestServerVersion, responseClass, fields, notificationElement(notification));
}

/**
 * An error-class `SendNotification` exactly as Exchange sends it when it cannot read a push
 * subscription's events (`ErrorReadEventsFailed`): `ResponseClass="Error"`, MessageText,
 * ResponseCode, `DescriptiveLinkKey` 0, and the subscription id in `MessageXml` — and **no**
 * `m:Notification`. That omission is what real servers do, and it is NOT valid against the
 * published schema (`Notification` has `minOccurs="1"` there). Use this to reproduce the real wire
 * (simulator, listener tests); when schema validity matters more, use {@link buildSendNotification}
 * with `responseClass: 'Error'` and a notification.
 */
export function buildSendNotificationError(options: SendNotificationErrorOptions): string {
  requireObject(options, 'options');
  const opts = options;
  const subscriptionId = requireString(opts.subscriptionId, 'subscriptionId');
  if (opts.messageXml !== undefined && 'SubscriptionId' in requireObject(opts.messageXml, 'messageXml')) {
    throw new RangeError('messageXml must not repeat SubscriptionId (it comes from subscriptionId)');
  }
  const fields = responseFields(
    opts.responseCode ?? 'ErrorReadEventsFailed',
    opts.messageText ?? 'Events could not be read for this subscription. The subscription must be recreated.',
    opts.descriptiveLinkKey ?? 0,
    { SubscriptionId: subscriptionId, ...opts.messageXml },
  );
  return sendNotificationEnvelope(opts.requestServerVersion, 'Error', fields, '');
}

/**
 * The push listener's answer to a `SendNotification`: `OK` keeps the subscription, `Unsubscribe`
 * ends it.
 */
export function buildSendNotificationResult(status: SubscriptionStatus): string {
  if (status !== 'OK' && status !== 'Unsubscribe') {
    throw new RangeError(`status must be 'OK' or 'Unsubscribe' (got ${describeValue(status)})`);
  }
  return (
    `${XML_DECLARATION}<soap:Envelope xmlns:soap="${SOAP_NS}"><soap:Body>` +
    `<m:SendNotificationResult xmlns:m="${MESSAGES_NS}"><m:SubscriptionStatus>${status}</m:SubscriptionStatus>` +
    `</m:SendNotificationResult></soap:Body></soap:Envelope>`
  );
}
