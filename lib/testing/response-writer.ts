/**
 * Writes the simulator's SOAP envelopes the way Exchange 2013–2019 does:
 * - ordinary responses: `s:Envelope` (WCF style) with `h:ServerVersionInfo` in the header;
 * - GetStreamingEvents: an unprefixed `<Envelope xmlns="…soap/envelope/">` with `soap11:Header` and
 *   `soap11:Body`, `m:Notification` inside `m:Notifications` (the schema says `t:`; servers write `m:`),
 *   no XML declaration (several envelopes follow each other in one response) and no per-event
 *   Watermark — as captured from a real Exchange 2016 server;
 * - SOAP faults: HTTP 500, `a:ErrorCode` fault code, detail with `e:ResponseCode`/`e:Message`.
 */
import type { ResponseClass } from '../ews/messages.js';
import type { Id } from '../model.js';
import type { DeliveredEvent } from './events.js';
import { NS } from '../ews/xml-tree.js';

/** Escapes text for element content and attribute values. */
export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]!};`);
}

/** The `ServerVersionInfo` an Exchange 2016 CU server reports. */
export const SERVER_VERSION = { major: 15, minor: 1, majorBuild: 2507, minorBuild: 6, version: 'V2017_07_11' } as const;

const SERVER_VERSION_ATTRS =
  `MajorVersion="${SERVER_VERSION.major}" MinorVersion="${SERVER_VERSION.minor}" MajorBuildNumber="${SERVER_VERSION.majorBuild}" ` +
  `MinorBuildNumber="${SERVER_VERSION.minorBuild}" Version="${SERVER_VERSION.version}"`;
const XSD_XSI = 'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

/** The status part of a response message. */
export interface MessageStatus {
  /** `NoError` or an EWS error code. */
  readonly code: string;
  /** @defaultValue `Success` for NoError, else `Error` */
  readonly responseClass?: ResponseClass;
  readonly text?: string;
  /** `MessageXml/t:Value[@Name]` pairs. */
  readonly messageXml?: Readonly<Record<string, string>>;
}

/** Success. */
export const NO_ERROR: MessageStatus = { code: 'NoError' };

const DEFAULT_TEXTS: Readonly<Record<string, string>> = {
  ErrorSubscriptionNotFound: 'The specified subscription was not found.',
  ErrorExpiredSubscription: 'The subscription has expired.',
  ErrorInvalidWatermark: 'The watermark used for creating this subscription was not found.',
  ErrorInvalidSubscription: 'The subscription is no longer valid.',
  ErrorNewEventStreamConnectionOpened: 'A new event stream connection has been opened for this subscription; this connection no longer receives its events.',
  ErrorMissedNotificationEvents: 'One or more notification events were dropped for this subscription.',
  ErrorExceededConnectionCount: 'You have exceeded the available concurrent connections for your account. Try again once your other requests have completed.',
  ErrorExceededSubscriptionCount: 'You have exceeded the maximum number of subscriptions for your account.',
  ErrorImpersonateUserDenied: 'The account does not have permission to impersonate the requested user.',
  ErrorNonExistentMailbox: 'The SMTP address has no mailbox associated with it.',
  ErrorFolderNotFound: 'The specified folder could not be found in the store.',
  ErrorInvalidSyncStateData: 'Synchronization state data is corrupt or otherwise invalid.',
  ErrorSubscriptionDelegateAccessNotSupported: 'Subscriptions are not supported for delegate user access.',
  ErrorInvalidSubscriptionRequest: 'The subscription request is invalid.',
  ErrorInvalidPushSubscriptionUrl: 'The specified push subscription URL is invalid.',
  ErrorInvalidPullSubscriptionId: 'The pull subscription id is invalid.',
  ErrorSubscriptionAccessDenied: 'Access is denied. Only the subscription owner may access the subscription.',
  ErrorReadEventsFailed: 'The events could not be read for this subscription.',
};

/** The inner elements of a `*ResponseMessage`: MessageText, ResponseCode, DescriptiveLinkKey, MessageXml. */
function statusXml(status: MessageStatus): string {
  if (status.code === 'NoError') return '<m:ResponseCode>NoError</m:ResponseCode>';
  const text = status.text ?? DEFAULT_TEXTS[status.code] ?? status.code;
  const xml = status.messageXml
    ? `<m:MessageXml>${Object.entries(status.messageXml)
        .map(([name, value]) => `<t:Value Name="${escapeXml(name)}">${escapeXml(value)}</t:Value>`)
        .join('')}</m:MessageXml>`
    : '';
  return `<m:MessageText>${escapeXml(text)}</m:MessageText><m:ResponseCode>${escapeXml(status.code)}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>${xml}`;
}

/** One `m:<element>` response message with its status and operation-specific children. */
export function responseMessage(element: string, status: MessageStatus, inner = ''): string {
  const cls = status.responseClass ?? (status.code === 'NoError' ? 'Success' : 'Error');
  return `<m:${element} ResponseClass="${cls}">${statusXml(status)}${inner}</m:${element}>`;
}

/** A whole ordinary (non-streaming) response document: `<s:Envelope>` with ServerVersionInfo. */
export function responseEnvelope(operation: string, messages: readonly string[]): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${NS.soap}"><s:Header>` +
    `<h:ServerVersionInfo ${SERVER_VERSION_ATTRS} xmlns:h="${NS.t}" xmlns="${NS.t}" ${XSD_XSI}/>` +
    `</s:Header><s:Body ${XSD_XSI}>` +
    `<m:${operation}Response xmlns:m="${NS.m}" xmlns:t="${NS.t}"><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:${operation}Response>` +
    '</s:Body></s:Envelope>'
  );
}

/** One envelope of a GetStreamingEvents response, byte-for-byte in the shape Exchange 2016 writes. */
export function streamingEnvelope(messages: readonly string[]): string {
  return (
    `<Envelope xmlns="${NS.soap}"><soap11:Header xmlns:soap11="${NS.soap}">` +
    `<ServerVersionInfo ${XSD_XSI} xmlns="${NS.t}" ${SERVER_VERSION_ATTRS}/></soap11:Header>` +
    `<soap11:Body xmlns:soap11="${NS.soap}"><m:GetStreamingEventsResponse ${XSD_XSI} xmlns:t="${NS.t}" xmlns:m="${NS.m}">` +
    `<m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:GetStreamingEventsResponse></soap11:Body></Envelope>`
  );
}

/** A SOAP 1.1 fault as Exchange writes it (sent with HTTP 500). */
export function faultEnvelope(
  code: string,
  faultString: string,
  options: { detail?: ReadonlyArray<readonly [string, string]>; messageXml?: Readonly<Record<string, string>> } = {},
): string {
  const { detail = [], messageXml } = options;
  const e = `xmlns:e="${NS.e}"`;
  const xml = messageXml
    ? `<e:MessageXml ${e}>${Object.entries(messageXml)
        .map(([name, value]) => `<t:Value Name="${escapeXml(name)}" xmlns:t="${NS.t}">${escapeXml(value)}</t:Value>`)
        .join('')}</e:MessageXml>`
    : '';
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${NS.soap}"><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${NS.t}">a:${escapeXml(code)}</faultcode>` +
    `<faultstring xml:lang="en-US">${escapeXml(faultString)}</faultstring>` +
    `<detail><e:ResponseCode ${e}>${escapeXml(code)}</e:ResponseCode><e:Message ${e}>${escapeXml(faultString)}</e:Message>` +
    detail.map(([name, value]) => `<e:${name} ${e}>${escapeXml(value)}</e:${name}>`).join('') +
    xml +
    '</detail></s:Fault></s:Body></s:Envelope>'
  );
}

/** An event as written on the wire: a delivered event, or a status event. */
export type WireEvent = DeliveredEvent | { readonly type: 'Status'; readonly watermark: string };

function idXml(element: string, id: Id): string {
  const ck = id.changeKey === undefined ? '' : ` ChangeKey="${escapeXml(id.changeKey)}"`;
  return `<t:${element} Id="${escapeXml(id.id)}"${ck}/>`;
}

/** One event element (`t:NewMailEvent`…), with or without its Watermark. */
export function eventXml(event: WireEvent, withWatermark: boolean): string {
  const wm = withWatermark ? `<t:Watermark>${escapeXml(event.watermark)}</t:Watermark>` : '';
  if (event.type === 'Status') return `<t:StatusEvent>${wm}</t:StatusEvent>`;
  let body = `${wm}<t:TimeStamp>${escapeXml(event.timeStamp)}</t:TimeStamp>`;
  body += event.folderId ? idXml('FolderId', event.folderId) : idXml('ItemId', event.itemId!);
  body += idXml('ParentFolderId', event.parentFolderId);
  if (event.type === 'Moved' || event.type === 'Copied') {
    body += event.oldFolderId ? idXml('OldFolderId', event.oldFolderId) : idXml('OldItemId', event.oldItemId!);
    body += idXml('OldParentFolderId', event.oldParentFolderId);
  } else if (event.type === 'Modified' && event.unreadCount !== undefined) {
    body += `<t:UnreadCount>${event.unreadCount}</t:UnreadCount>`;
  }
  return `<t:${event.type}Event>${body}</t:${event.type}Event>`;
}

/** What goes into one Notification element. */
export interface WireNotification {
  readonly subscriptionId: string;
  /** Pull and push only. */
  readonly previousWatermark?: string;
  /** Pull and push only. */
  readonly moreEvents?: boolean;
  readonly events: readonly WireEvent[];
}

/** A `m:Notification` element; watermarks are written only when `previousWatermark` is set (pull/push). */
export function notificationXml(n: WireNotification): string {
  const withWatermarks = n.previousWatermark !== undefined;
  const head =
    `<t:SubscriptionId>${escapeXml(n.subscriptionId)}</t:SubscriptionId>` +
    (withWatermarks ? `<t:PreviousWatermark>${escapeXml(n.previousWatermark!)}</t:PreviousWatermark>` : '') +
    (n.moreEvents === undefined ? '' : `<t:MoreEvents>${n.moreEvents}</t:MoreEvents>`);
  return `<m:Notification>${head}${n.events.map((e) => eventXml(e, withWatermarks)).join('')}</m:Notification>`;
}

/** A GetStreamingEventsResponseMessage with notifications, error ids and/or a connection status. */
export function streamingMessage(
  status: MessageStatus,
  parts: { notifications?: readonly WireNotification[]; errorSubscriptionIds?: readonly string[]; connectionStatus?: 'OK' | 'Closed' },
): string {
  const notifications = parts.notifications?.length
    ? `<m:Notifications>${parts.notifications.map(notificationXml).join('')}</m:Notifications>`
    : '';
  const errors = parts.errorSubscriptionIds?.length
    ? `<m:ErrorSubscriptionIds>${parts.errorSubscriptionIds.map((id) => `<t:SubscriptionId>${escapeXml(id)}</t:SubscriptionId>`).join('')}</m:ErrorSubscriptionIds>`
    : '';
  const connection = parts.connectionStatus ? `<m:ConnectionStatus>${parts.connectionStatus}</m:ConnectionStatus>` : '';
  return responseMessage('GetStreamingEventsResponseMessage', status, notifications + errors + connection);
}
