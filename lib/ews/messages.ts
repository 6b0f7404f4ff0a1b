/**
 * Typed results of parsing EWS SOAP envelopes. The incremental parser (`parser.ts`) produces one
 * {@link EwsEnvelope} per closed `Envelope`; everything above the wire layer works with these.
 */
import type { PushNotification, SubscriptionStatus } from '../model.js';

/** `ResponseClass` of an EWS response message. */
export type ResponseClass = 'Success' | 'Warning' | 'Error';

/** `t:ServerVersionInfo` from the SOAP header. */
export interface ServerVersionInfo {
  readonly majorVersion?: number;
  readonly minorVersion?: number;
  readonly majorBuildNumber?: number;
  readonly minorBuildNumber?: number;
  readonly version?: string;
}

/** Fields every `*ResponseMessage` carries (`m:ResponseMessageType`). */
export interface ResponseMessageBase {
  readonly responseClass: ResponseClass;
  /** `NoError` on success, else an EWS response code such as `ErrorSubscriptionNotFound`. */
  readonly responseCode: string;
  readonly messageText?: string;
  /** `MessageXml/Value[@Name]` pairs, e.g. `{ BackOffMilliseconds: '5000' }`. */
  readonly messageXml?: Readonly<Record<string, string>>;
  readonly descriptiveLinkKey?: number;
}

/** One message of a `GetStreamingEventsResponse`. */
export interface GetStreamingEventsMessage extends ResponseMessageBase {
  readonly kind: 'GetStreamingEvents';
  /** One per `Notification` element, in wire order; `moreEvents` is always false. */
  readonly notifications: readonly PushNotification[];
  /** Subscriptions this (error) message concerns; empty means the whole connection. */
  readonly errorSubscriptionIds: readonly string[];
  /** `OK` is a keep-alive; `Closed` means the server ended the connection at its timeout. */
  readonly connectionStatus?: 'OK' | 'Closed';
}

/** One message of a `SubscribeResponse`. */
export interface SubscribeMessage extends ResponseMessageBase {
  readonly kind: 'Subscribe';
  readonly subscriptionId?: string;
  /** Pull and push subscriptions return the starting watermark. */
  readonly watermark?: string;
}

/** One message of a `GetEventsResponse`. */
export interface GetEventsMessage extends ResponseMessageBase {
  readonly kind: 'GetEvents';
  readonly notification?: PushNotification;
}

/** One message of an `UnsubscribeResponse`. */
export interface UnsubscribeMessage extends ResponseMessageBase {
  readonly kind: 'Unsubscribe';
}

/** One change of a `SyncFolderItems` response, ids only. */
export interface SyncItemChange {
  readonly type: 'Create' | 'Update' | 'Delete' | 'ReadFlagChange';
  readonly itemId: { readonly id: string; readonly changeKey?: string };
  /** Only on ReadFlagChange. */
  readonly isRead?: boolean;
  /**
   * Create and Update: the local name of the item element, which is all SyncFolderItems tells of
   * the item's class (`Message`, `CalendarItem`, `MeetingRequest`, `Contact`, `Task`, `Item` …).
   */
  readonly itemClass?: string;
  /** Create and Update, when the request asked for `item:ParentFolderId`: the folder holding the item. */
  readonly parentFolderId?: { readonly id: string; readonly changeKey?: string };
}

/** One message of a `SyncFolderItemsResponse`. */
export interface SyncFolderItemsMessage extends ResponseMessageBase {
  readonly kind: 'SyncFolderItems';
  readonly syncState?: string;
  readonly includesLastItemInRange?: boolean;
  readonly changes: readonly SyncItemChange[];
}

/** One `SendNotificationResponseMessage` of a push `SendNotification` (what Exchange POSTs). */
export interface SendNotificationMessage extends ResponseMessageBase {
  readonly kind: 'SendNotification';
  readonly notification?: PushNotification;
}

/** A response message of an operation this library does not interpret. */
export interface OtherMessage extends ResponseMessageBase {
  readonly kind: 'Other';
  /** Local name of the message element, e.g. `FindItemResponseMessage`. */
  readonly elementName: string;
}

/** Any response message. */
export type ResponseMessage =
  | GetStreamingEventsMessage
  | SubscribeMessage
  | GetEventsMessage
  | UnsubscribeMessage
  | SyncFolderItemsMessage
  | SendNotificationMessage
  | OtherMessage;

/** A SOAP 1.1 `Fault`, with the EWS detail when present. */
export interface SoapFault {
  readonly faultCode: string;
  readonly faultString: string;
  /** `e:ResponseCode` from the detail, e.g. `ErrorServerBusy` or `ErrorSchemaValidation`. */
  readonly responseCode?: string;
  readonly messageText?: string;
  /** `e:MessageXml/t:Value[@Name]` pairs. */
  readonly messageXml?: Readonly<Record<string, string>>;
}

/** The body of one parsed envelope. */
export type EwsBody =
  /** A `*Response` element with `ResponseMessages` (or a `SendNotification` request). */
  | { readonly type: 'response'; readonly operation: string; readonly messages: readonly ResponseMessage[] }
  /** A push listener's `SendNotificationResult`. */
  | { readonly type: 'sendNotificationResult'; readonly subscriptionStatus: SubscriptionStatus }
  | { readonly type: 'fault'; readonly fault: SoapFault };

/** One complete SOAP envelope. */
export interface EwsEnvelope {
  readonly serverVersion?: ServerVersionInfo;
  readonly body: EwsBody;
}
