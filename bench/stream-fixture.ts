/**
 * The synthetic but realistically shaped EWS traffic every bench consumes: Exchange-2016-style
 * GetStreamingEvents envelopes (unprefixed Envelope, soap11 Header/Body, m:Notification) with ids of
 * realistic length, and the same events with watermarks for GetEvents pages.
 *
 * Event `n` is always the same bytes, whichever bench or notification size it appears in, so every
 * client can be checked against {@link expectedKey}: item events carry a unique ItemId; folder events
 * (every fifth) repeat their FolderId every 7 and their UnreadCount every 100 events, so their key
 * repeats every 700 events — enough to detect any loss, duplicate or reordering in sequence.
 */

export const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const M_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';
export const T_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';

/** The subscription every generated notification belongs to (a real Exchange 2016 id's shape). */
export const SUBSCRIPTION_ID = 'FwBleGNoMDMuYm9va2luZ2J1Zy5sb2NhbBAAAACRSuDZ7LUVRZRdTUGgj8dRTln61/P61ggQAAAAXGkYiHJpukmWTKXM27pVgQ==';

/** An Exchange-looking id (~150 base64 characters) whose tail encodes `kind` and `n`. */
export function objectId(kind: string, n: number): string {
  return `AAMkADg4MTg2OTVjLTY5NzItNDliYS05NjRjLWE1Y2NkYmJhNTU4MQBGAAAAAAAnT+v/XrekSJPJnfajaVp7BwB4AcCri66ATqtSWLqPBV/${kind}${n.toString(36).padStart(8, '0')}AAA=`;
}

const WATERMARK_HEAD = 'AQAAAEqj6NxpBeZEsRwALnUFXqE';

/** The watermark written after event `n` in GetEvents pages. */
export function watermarkOf(n: number): string {
  return `${WATERMARK_HEAD}${n.toString(36).padStart(8, '0')}AAAAAAA=`;
}

/** The event a {@link watermarkOf} watermark follows, or `undefined` for any other string. */
export function eventOfWatermark(watermark: string): number | undefined {
  if (!watermark.startsWith(WATERMARK_HEAD) || watermark.length !== WATERMARK_HEAD.length + 16) return undefined;
  const n = parseInt(watermark.slice(WATERMARK_HEAD.length, WATERMARK_HEAD.length + 8), 36);
  return Number.isNaN(n) ? undefined : n;
}

/**
 * Event `n` as an element of `t:` (NewMail, Created, Modified items, Moved items, Modified folders
 * with UnreadCount, in turn). With `watermark`, the event carries it first, as pull and push do.
 */
export function eventXml(n: number, watermark?: string): string {
  const wm = watermark === undefined ? '' : `<t:Watermark>${watermark}</t:Watermark>`;
  const ts = `${wm}<t:TimeStamp>2024-03-05T09:${String(Math.floor(n / 60) % 60).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}Z</t:TimeStamp>`;
  const item = `<t:ItemId Id="${objectId('item', n)}" ChangeKey="CQAAABYAAAB4AcCri66ATqtSWLqPBV/jAAAMnbCE"/>`;
  const parent = `<t:ParentFolderId Id="${objectId('fold', n % 7)}" ChangeKey="AQAAAA=="/>`;
  switch (n % 5) {
    case 0:
      return `<t:NewMailEvent>${ts}${item}${parent}</t:NewMailEvent>`;
    case 1:
      return `<t:CreatedEvent>${ts}${item}${parent}</t:CreatedEvent>`;
    case 2:
      return `<t:ModifiedEvent>${ts}${item}${parent}</t:ModifiedEvent>`;
    case 3:
      return `<t:MovedEvent>${ts}${item}${parent}<t:OldItemId Id="${objectId('oldi', n)}" ChangeKey="CQAAAA=="/><t:OldParentFolderId Id="${objectId('fold', 99)}" ChangeKey="AQAAAA=="/></t:MovedEvent>`;
    default:
      return `<t:ModifiedEvent>${ts}<t:FolderId Id="${objectId('fold', n % 7)}" ChangeKey="AgAAAA=="/><t:ParentFolderId Id="${objectId('root', 0)}" ChangeKey="AQAAAA=="/><t:UnreadCount>${n % 100}</t:UnreadCount></t:ModifiedEvent>`;
  }
}

/** How a client reports one received event for the in-order check: the object id, plus `#UnreadCount` for folder events. */
export function eventKeyOf(id: string, unreadCount?: number): string {
  return unreadCount === undefined ? id : `${id}#${unreadCount}`;
}

/** The key a correct client reports for event `n`. */
export function expectedKey(n: number): string {
  return n % 5 === 4 ? eventKeyOf(objectId('fold', n % 7), n % 100) : objectId('item', n);
}

function streamingEnvelopeAround(message: string): string {
  return (
    `<Envelope xmlns="${SOAP_NS}"><soap11:Header xmlns:soap11="${SOAP_NS}"><ServerVersionInfo xmlns="${T_NS}" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></soap11:Header>` +
    `<soap11:Body xmlns:soap11="${SOAP_NS}"><m:GetStreamingEventsResponse xmlns:t="${T_NS}" xmlns:m="${M_NS}"><m:ResponseMessages>` +
    `<m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${message}</m:GetStreamingEventsResponseMessage></m:ResponseMessages>` +
    `</m:GetStreamingEventsResponse></soap11:Body></Envelope>`
  );
}

/** One GetStreamingEvents envelope carrying one notification of events `first` … `first + count - 1`. */
export function streamingEnvelope(first: number, count: number, subscriptionId = SUBSCRIPTION_ID): string {
  let events = '';
  for (let n = first; n < first + count; n++) events += eventXml(n);
  return streamingEnvelopeAround(`<m:Notifications><m:Notification><t:SubscriptionId>${subscriptionId}</t:SubscriptionId>${events}</m:Notification></m:Notifications>`);
}

/** A GetStreamingEvents envelope with only a ConnectionStatus (`OK` = keep-alive, `Closed` = the server ends the connection). */
export function connectionStatusEnvelope(status: 'OK' | 'Closed'): string {
  return streamingEnvelopeAround(`<m:ConnectionStatus>${status}</m:ConnectionStatus>`);
}

/** Options of {@link streamingResponseText}. */
export interface StreamingResponseOptions {
  /** Events in the stream. Required. */
  readonly events: number;
  /** Events per notification (= per envelope; the stream has one subscription). Required. */
  readonly eventsPerNotification: number;
  /** Append a `ConnectionStatus Closed` envelope, as a server does at the connection's timeout. Default `false`. */
  readonly closed?: boolean;
}

/** The body of one GetStreamingEvents response: envelopes separated by CRLF, as Exchange writes them. */
export function streamingResponseText(options: StreamingResponseOptions): string {
  const { events, eventsPerNotification } = options;
  let text = '';
  for (let first = 0; first < events; first += eventsPerNotification) {
    text += `${streamingEnvelope(first, Math.min(eventsPerNotification, events - first))}\r\n`;
  }
  if (options.closed === true) text += `${connectionStatusEnvelope('Closed')}\r\n`;
  return text;
}

/**
 * The same body as {@link streamingResponseText}, one Buffer per envelope (with its CRLF): what a
 * server that flushes each notification writes as one HTTP chunk, as Exchange does.
 */
export function streamingResponseEnvelopes(options: StreamingResponseOptions): Buffer[] {
  const { events, eventsPerNotification } = options;
  const out: Buffer[] = [];
  for (let first = 0; first < events; first += eventsPerNotification) {
    out.push(Buffer.from(`${streamingEnvelope(first, Math.min(eventsPerNotification, events - first))}\r\n`, 'utf8'));
  }
  if (options.closed === true) out.push(Buffer.from(`${connectionStatusEnvelope('Closed')}\r\n`, 'utf8'));
  return out;
}

/** `bytes` cut into consecutive chunks of `size` bytes (the last may be shorter); no copies. */
export function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}
