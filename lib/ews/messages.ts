/**
 * Typed results of parsing EWS SOAP envelopes. The incremental parser (`parser.ts`) produces one
 * {@link EwsEnvelope} per closed `Envelope`; everything above the wire layer works with these.
 */
import type { PushNotification, SubscriptionStatus } from '../model.js';

/** `ResponseClass` of an EWS response message. */
export type ResponseClass = 'Success' | 'Warning' | 'Error';

/** `t:ServerVersionInfo` from the SOAP header. */
export interface ServerVersionInfo {
  /** `MajorVersion`, e.g. 15 for Exchange 2013 and later. */
  readonly majorVersion?: number;
  /** `MinorVersion`, e.g. 1 for Exchange 2016, 2 for Exchange 2019. */
  readonly minorVersion?: number;
  /** `MajorBuildNumber`. */
  readonly majorBuildNumber?: number;
  /** `MinorBuildNumber`. */
  readonly minorBuildNumber?: number;
  /** `Version`, the schema version the server answered with, e.g. `V2017_07_11`. */
  readonly version?: string;
}

/** Fields every `*ResponseMessage` carries (`m:ResponseMessageType`). */
export interface ResponseMessageBase {
  /** Whether the operation succeeded, succeeded with a warning, or failed. */
  readonly responseClass: ResponseClass;
  /** `NoError` on success, else an EWS response code such as `ErrorSubscriptionNotFound`. */
  readonly responseCode: string;
  /** `MessageText`: the server's description of an error or warning. */
  readonly messageText?: string;
  /** `MessageXml/Value[@Name]` pairs, e.g. `{ BackOffMilliseconds: '5000' }`. */
  readonly messageXml?: Readonly<Record<string, string>>;
  /** `DescriptiveLinkKey`, when the server sent one. */
  readonly descriptiveLinkKey?: number;
}

/** One message of a `GetStreamingEventsResponse`. */
export interface GetStreamingEventsMessage extends ResponseMessageBase {
  /** Discriminant: the operation the message answers. */
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
  /** Discriminant: the operation the message answers. */
  readonly kind: 'Subscribe';
  /** The new subscription's id (absent on an error). */
  readonly subscriptionId?: string;
  /** Pull and push subscriptions return the starting watermark. */
  readonly watermark?: string;
}

/** One message of a `GetEventsResponse`. */
export interface GetEventsMessage extends ResponseMessageBase {
  /** Discriminant: the operation the message answers. */
  readonly kind: 'GetEvents';
  /** The events since the watermark asked with (absent on an error). */
  readonly notification?: PushNotification;
}

/** One message of an `UnsubscribeResponse`. */
export interface UnsubscribeMessage extends ResponseMessageBase {
  /** Discriminant: the operation the message answers. */
  readonly kind: 'Unsubscribe';
}

/** One change of a `SyncFolderItems` response, ids only. */
export interface SyncItemChange {
  /** What happened to the item. */
  readonly type: 'Create' | 'Update' | 'Delete' | 'ReadFlagChange';
  /** The item. */
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
  /** Discriminant: the operation the message answers. */
  readonly kind: 'SyncFolderItems';
  /** The state to pass to the next SyncFolderItems call. */
  readonly syncState?: string;
  /** `false` when more changes wait: call again with `syncState`. */
  readonly includesLastItemInRange?: boolean;
  /** The changes, in the server's order. */
  readonly changes: readonly SyncItemChange[];
}

/** One `SendNotificationResponseMessage` of a push `SendNotification` (what Exchange POSTs). */
export interface SendNotificationMessage extends ResponseMessageBase {
  /** Discriminant: a push notification (a request Exchange sends, parsed like a response). */
  readonly kind: 'SendNotification';
  /** The notification it carries. */
  readonly notification?: PushNotification;
}

/** A response message of an operation this library does not interpret. */
export interface OtherMessage extends ResponseMessageBase {
  /** Discriminant: a message of another operation. */
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
  /** `faultcode`, a qualified name such as `a:ErrorSchemaValidation` or `soap:Server`. */
  readonly faultCode: string;
  /** `faultstring`, the human-readable description. */
  readonly faultString: string;
  /** `e:ResponseCode` from the detail, e.g. `ErrorServerBusy` or `ErrorSchemaValidation`. */
  readonly responseCode?: string;
  /** `e:Message` from the detail. */
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
  /** The header's `ServerVersionInfo`, when present. */
  readonly serverVersion?: ServerVersionInfo;
  /** What the body holds. */
  readonly body: EwsBody;
}
