import { describe, expect, it } from 'vitest';
import { EwsParseError } from '../lib/entry-errors.js';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  EnvelopeParser,
  parseEnvelope,
  type EwsEnvelope,
  type GetStreamingEventsMessage,
  type ResponseMessage,
} from '../lib/wire.js';
import { fixture, parseWhole, thrown } from './helpers/parser-fixtures.js';

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

function messagesOf(envelope: EwsEnvelope): readonly ResponseMessage[] {
  if (envelope.body.type !== 'response') throw new Error(`expected a response body, got ${envelope.body.type}`);
  return envelope.body.messages;
}

/** A GetStreamingEvents envelope around `inner` (the message content), prefixed `s:`. */
function streaming(inner: string, s = 's'): string {
  return (
    `<${s}:Envelope xmlns:${s}="${SOAP}"><${s}:Body><m:GetStreamingEventsResponse xmlns:m="${M}" xmlns:t="${T}">` +
    `<m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success">` +
    `<m:ResponseCode>NoError</m:ResponseCode>${inner}</m:GetStreamingEventsResponseMessage>` +
    `</m:ResponseMessages></m:GetStreamingEventsResponse></${s}:Body></${s}:Envelope>`
  );
}

describe('parseEnvelope: GetStreamingEvents', () => {
  it('reads an Exchange 2016 unprefixed envelope: two Notifications, no watermarks, wire order', () => {
    const envelope = parseEnvelope(fixture('streaming-exchange2016.xml'));
    expect(envelope).toStrictEqual({
      serverVersion: {
        majorVersion: 15,
        minorVersion: 1,
        majorBuildNumber: 2507,
        minorBuildNumber: 6,
        version: 'V2017_07_11',
      },
      body: {
        type: 'response',
        operation: 'GetStreamingEvents',
        messages: [
          {
            kind: 'GetStreamingEvents',
            responseClass: 'Success',
            responseCode: 'NoError',
            notifications: [
              {
                subscriptionId: 'FwBzdWIxLmV4YW1wbGUubG9jYWwQAAAAAQIDBAUGBwgJCgsMDQ4PEA==',
                moreEvents: false,
                events: [
                  {
                    type: 'Modified',
                    timeStamp: '2024-03-05T09:14:02Z',
                    itemId: { id: 'AAMkAGI1-item-0001', changeKey: 'CQAAABYA' },
                    parentFolderId: { id: 'AAMkAGI1-inbox', changeKey: 'AQAAAA==' },
                  },
                  {
                    type: 'FreeBusyChanged',
                    timeStamp: '2024-03-05T09:14:02Z',
                    itemId: { id: 'AAMkAGI1-item-0001', changeKey: 'CQAAABYA' },
                    parentFolderId: { id: 'AAMkAGI1-inbox', changeKey: 'AQAAAA==' },
                  },
                  {
                    type: 'Modified',
                    timeStamp: '2024-03-05T09:14:03Z',
                    folderId: { id: 'AAMkAGI1-inbox', changeKey: 'AgAAAA==' },
                    parentFolderId: { id: 'AAMkAGI1-root', changeKey: 'AQAAAA==' },
                    unreadCount: 7,
                  },
                ],
              },
              {
                subscriptionId: 'FwBzdWIyLmV4YW1wbGUubG9jYWwQAAAAERITFBUWFxgZGhscHR4fIA==',
                moreEvents: false,
                events: [
                  {
                    type: 'NewMail',
                    timeStamp: '2024-03-05T09:14:05Z',
                    itemId: { id: 'AAMkAGI2-item-0042', changeKey: 'CQAAABYB' },
                    parentFolderId: { id: 'AAMkAGI2-inbox', changeKey: 'AQAAAA==' },
                  },
                ],
              },
            ],
            errorSubscriptionIds: [],
          },
        ],
      },
    });
  });

  it('reads every event type from a prefixed envelope with t:Notification, in wire order', () => {
    const [message] = messagesOf(parseEnvelope(fixture('streaming-prefixed-all-events.xml')));
    expect(message?.kind).toBe('GetStreamingEvents');
    const notifications = (message as GetStreamingEventsMessage).notifications;
    expect(notifications).toHaveLength(1);
    expect(notifications[0]).toStrictEqual({
      subscriptionId: 'sub-prefixed-1',
      moreEvents: false,
      events: [
        {
          type: 'Copied',
          timeStamp: '2024-03-05T10:00:00Z',
          folderId: { id: 'folder-copy', changeKey: 'AQAAAB==' },
          parentFolderId: { id: 'folder-archive' },
          oldFolderId: { id: 'folder-original', changeKey: 'AQAAAC==' },
          oldParentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'Created',
          timeStamp: '2024-03-05T10:00:01Z',
          itemId: { id: 'item-created', changeKey: 'CQAAAA==' },
          parentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'Deleted',
          timeStamp: '2024-03-05T10:00:02Z',
          itemId: { id: 'item-deleted' },
          parentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'Modified',
          timeStamp: '2024-03-05T10:00:03Z',
          itemId: { id: 'item-modified', changeKey: 'CQAAAB==' },
          parentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'Moved',
          timeStamp: '2024-03-05T10:00:04Z',
          itemId: { id: 'item-moved-new', changeKey: 'CQAAAC==' },
          parentFolderId: { id: 'folder-deleteditems', changeKey: 'AQAAAD==' },
          oldItemId: { id: 'item-moved-old', changeKey: 'CQAAAD==' },
          oldParentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'NewMail',
          timeStamp: '2024-03-05T10:00:05Z',
          itemId: { id: 'item-new', changeKey: 'CQAAAE==' },
          parentFolderId: { id: 'folder-inbox', changeKey: 'AQAAAA==' },
        },
        {
          type: 'FreeBusyChanged',
          timeStamp: '2024-03-05T10:00:06Z',
          itemId: { id: 'item-meeting', changeKey: 'DwAAAA==' },
          parentFolderId: { id: 'folder-calendar', changeKey: 'AQAAAA==' },
        },
        { type: 'Status' },
      ],
    });
  });

  it('reads ConnectionStatus OK and Closed', () => {
    const ok = messagesOf(parseEnvelope(fixture('streaming-connection-ok.xml')));
    expect(ok).toStrictEqual([
      {
        kind: 'GetStreamingEvents',
        responseClass: 'Success',
        responseCode: 'NoError',
        notifications: [],
        errorSubscriptionIds: [],
        connectionStatus: 'OK',
      },
    ]);
    const closed = messagesOf(parseEnvelope(fixture('streaming-connection-closed.xml')))[0];
    expect((closed as GetStreamingEventsMessage).connectionStatus).toBe('Closed');
  });

  it('reads an error message with ErrorSubscriptionIds, MessageText (non-ASCII), MessageXml and DescriptiveLinkKey', () => {
    expect(messagesOf(parseEnvelope(fixture('streaming-error-subscription-ids.xml')))).toStrictEqual([
      {
        kind: 'GetStreamingEvents',
        responseClass: 'Error',
        responseCode: 'ErrorNewEventStreamConnectionOpened',
        messageText: 'Ein neuer Stream wurde für dieses Abonnement geöffnet — 新しい接続 😀',
        messageXml: { SubscriptionId: 'sub-prefixed-1' },
        descriptiveLinkKey: 0,
        notifications: [],
        errorSubscriptionIds: ['sub-prefixed-1', 'sub-ünïcødé-2'],
        connectionStatus: 'Closed',
      },
    ]);
  });

  it('drops a ConnectionStatus value it does not know instead of guessing', () => {
    const [message] = messagesOf(parseEnvelope(streaming('<m:ConnectionStatus>Paused</m:ConnectionStatus>')));
    expect(message).not.toHaveProperty('connectionStatus');
  });
});

describe('parseEnvelope: pull, subscribe, unsubscribe, sync', () => {
  it('reads GetEvents with PreviousWatermark, MoreEvents, per-event watermarks, and skips unknown elements', () => {
    const envelope = parseEnvelope(fixture('getevents-all-events.xml'));
    expect(envelope.serverVersion).toStrictEqual({
      majorVersion: 15,
      minorVersion: 0,
      majorBuildNumber: 1497,
      minorBuildNumber: 2,
    });
    expect(messagesOf(envelope)).toStrictEqual([
      {
        kind: 'GetEvents',
        responseClass: 'Success',
        responseCode: 'NoError',
        notification: {
          subscriptionId: 'pull-sub-7',
          previousWatermark: 'AAAAAGUhAAAAAAAAAQ==',
          moreEvents: true,
          events: [
            {
              type: 'NewMail',
              watermark: 'AAAAAHMhAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:00Z',
              itemId: { id: 'pull-item-1', changeKey: 'CQAAAA==' },
              parentFolderId: { id: 'pull-inbox', changeKey: 'AQAAAA==' },
            },
            {
              type: 'Moved',
              watermark: 'AAAAAHQhAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:01Z',
              folderId: { id: 'pull-folder-b', changeKey: 'AQAAAB==' },
              parentFolderId: { id: 'pull-archive' },
              oldFolderId: { id: 'pull-folder-a' },
              oldParentFolderId: { id: 'pull-inbox', changeKey: 'AQAAAA==' },
            },
            {
              type: 'Copied',
              watermark: 'AAAAAHUhAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:02Z',
              itemId: { id: 'pull-item-copy' },
              parentFolderId: { id: 'pull-archive' },
              oldItemId: { id: 'pull-item-1', changeKey: 'CQAAAA==' },
              oldParentFolderId: { id: 'pull-inbox' },
            },
            {
              type: 'Modified',
              watermark: 'AAAAAHYhAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:03Z',
              folderId: { id: 'pull-inbox', changeKey: 'AQAAAE==' },
              parentFolderId: { id: 'pull-root' },
              unreadCount: 0,
            },
            {
              type: 'Deleted',
              watermark: 'AAAAAHchAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:04Z',
              itemId: { id: 'pull-item-copy' },
              parentFolderId: { id: 'pull-archive' },
            },
            {
              type: 'Created',
              watermark: 'AAAAAHghAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:05Z',
              folderId: { id: 'pull-folder-new' },
              parentFolderId: { id: 'pull-inbox' },
            },
            {
              type: 'FreeBusyChanged',
              watermark: 'AAAAAHkhAAAAAAAAAQ==',
              timeStamp: '2024-03-05T11:00:06Z',
              itemId: { id: 'pull-meeting' },
              parentFolderId: { id: 'pull-calendar' },
            },
          ],
        },
      },
    ]);
  });

  it('reads a GetEvents StatusEvent with its watermark', () => {
    const [message] = messagesOf(parseEnvelope(fixture('getevents-status.xml')));
    expect(message).toStrictEqual({
      kind: 'GetEvents',
      responseClass: 'Success',
      responseCode: 'NoError',
      notification: {
        subscriptionId: 'pull-sub-7',
        previousWatermark: 'AAAAAHkhAAAAAAAAAQ==',
        moreEvents: false,
        events: [{ type: 'Status', watermark: 'AAAAAHohAAAAAAAAAQ==' }],
      },
    });
  });

  it('reads Subscribe responses: pull (with watermark), streaming (without), and an error message', () => {
    expect(messagesOf(parseEnvelope(fixture('subscribe-pull.xml')))).toStrictEqual([
      {
        kind: 'Subscribe',
        responseClass: 'Success',
        responseCode: 'NoError',
        subscriptionId: 'pull-sub-7',
        watermark: 'AAAAAGUhAAAAAAAAAQ==',
      },
    ]);
    const envelope = parseEnvelope(fixture('subscribe-streaming-two.xml'));
    expect(envelope.body).toMatchObject({ type: 'response', operation: 'Subscribe' });
    expect(messagesOf(envelope)).toStrictEqual([
      { kind: 'Subscribe', responseClass: 'Success', responseCode: 'NoError', subscriptionId: 'stream-sub-anchor' },
      {
        kind: 'Subscribe',
        responseClass: 'Error',
        responseCode: 'ErrorSubscriptionDelegateAccessNotSupported',
        messageText: 'Subscriptions are not supported for delegate user access.',
        descriptiveLinkKey: 0,
      },
    ]);
  });

  it('reads an Unsubscribe response', () => {
    expect(parseEnvelope(fixture('unsubscribe.xml'))).toStrictEqual({
      body: {
        type: 'response',
        operation: 'Unsubscribe',
        messages: [{ kind: 'Unsubscribe', responseClass: 'Success', responseCode: 'NoError' }],
      },
    });
  });

  it('reads SyncFolderItems: SyncState, IncludesLastItemInRange and each change type with its ItemId', () => {
    expect(messagesOf(parseEnvelope(fixture('syncfolderitems.xml')))).toStrictEqual([
      {
        kind: 'SyncFolderItems',
        responseClass: 'Success',
        responseCode: 'NoError',
        syncState: 'H4sIAAAAAAAEAO29B2AcSZY=',
        includesLastItemInRange: false,
        changes: [
          // The item element names the class; ParentFolderId comes when the request asked for it.
          { type: 'Create', itemId: { id: 'sync-item-1', changeKey: 'CQAAABYAAAB1' }, itemClass: 'Message', parentFolderId: { id: 'sync-inbox', changeKey: 'AQAAAA==' } },
          { type: 'Update', itemId: { id: 'sync-item-2', changeKey: 'DwAAABYAAAB2' }, itemClass: 'CalendarItem' },
          { type: 'ReadFlagChange', itemId: { id: 'sync-item-3', changeKey: 'CQAAABYAAAB3' }, isRead: true },
          { type: 'Delete', itemId: { id: 'sync-item-4' } },
        ],
      },
    ]);
  });

  it('reports a response message it does not interpret as kind Other', () => {
    expect(parseEnvelope(fixture('other-response.xml')).body).toStrictEqual({
      type: 'response',
      operation: 'FindItem',
      messages: [
        {
          kind: 'Other',
          elementName: 'FindItemResponseMessage',
          responseClass: 'Warning',
          responseCode: 'ErrorBatchProcessingStopped',
          messageText: 'Partial result.',
        },
      ],
    });
  });
});

describe('parseEnvelope: faults and push', () => {
  it('reads an ErrorServerBusy SOAP fault with BackOffMilliseconds', () => {
    expect(parseEnvelope(fixture('fault-server-busy.xml'), { httpStatus: 500 })).toStrictEqual({
      body: {
        type: 'fault',
        fault: {
          faultCode: 'a:ErrorServerBusy',
          faultString: 'The server cannot service this request right now. Try again later.',
          responseCode: 'ErrorServerBusy',
          messageText: 'The server cannot service this request right now. Try again later.',
          messageXml: { BackOffMilliseconds: '297749' },
        },
      },
    });
  });

  it('reads MessageXml in the types namespace too (both are seen in fault details)', () => {
    const body =
      `<s:Envelope xmlns:s="${SOAP}"><s:Body><s:Fault><faultcode>s:Client</faultcode>` +
      `<faultstring>Busy</faultstring><detail>` +
      `<e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>` +
      `<t:MessageXml xmlns:t="${T}"><t:Value Name="BackOffMilliseconds">5000</t:Value></t:MessageXml>` +
      `</detail></s:Fault></s:Body></s:Envelope>`;
    expect(parseEnvelope(body).body).toStrictEqual({
      type: 'fault',
      fault: {
        faultCode: 's:Client',
        faultString: 'Busy',
        responseCode: 'ErrorServerBusy',
        messageXml: { BackOffMilliseconds: '5000' },
      },
    });
  });

  it('reads a push SendNotification POST body as a SendNotification response', () => {
    expect(parseEnvelope(fixture('send-notification.xml'))).toStrictEqual({
      body: {
        type: 'response',
        operation: 'SendNotification',
        messages: [
          {
            kind: 'SendNotification',
            responseClass: 'Success',
            responseCode: 'NoError',
            notification: {
              subscriptionId: 'push-sub-3',
              previousWatermark: 'AQAAAOpvG0LURVdOhQkPOWZLPcI8EgAAAAAAAAE=',
              moreEvents: false,
              events: [{ type: 'Status', watermark: 'AQAAAOpvG0LURVdOhQkPOWZLPcI9EgAAAAAAAAE=' }],
            },
          },
        ],
      },
    });
  });

  it('reads a SendNotificationResult', () => {
    expect(parseEnvelope(fixture('send-notification-result.xml'))).toStrictEqual({
      body: { type: 'sendNotificationResult', subscriptionStatus: 'Unsubscribe' },
    });
    const ok = parseEnvelope(
      `<soap:Envelope xmlns:soap="${SOAP}"><soap:Body><m:SendNotificationResult xmlns:m="${M}">` +
        `<m:SubscriptionStatus>OK</m:SubscriptionStatus></m:SendNotificationResult></soap:Body></soap:Envelope>`,
    );
    expect(ok.body).toStrictEqual({ type: 'sendNotificationResult', subscriptionStatus: 'OK' });
  });
});

describe('namespaces decide, prefixes do not', () => {
  const inner =
    '<m:Notifications><m:Notification><t:SubscriptionId>s1</t:SubscriptionId>' +
    '<t:StatusEvent/></m:Notification></m:Notifications>';

  it.each(['s', 'soap', 'soap11', 'env'])('accepts the SOAP namespace under the prefix %s', (prefix) => {
    const body = streaming(inner, prefix);
    const [message] = messagesOf(parseEnvelope(body));
    expect((message as GetStreamingEventsMessage).notifications[0]?.subscriptionId).toBe('s1');
  });

  it('accepts EWS namespaces as default namespaces and under unusual prefixes', () => {
    const body =
      `<Envelope xmlns="${SOAP}"><Body><GetStreamingEventsResponse xmlns="${M}"><ResponseMessages>` +
      `<GetStreamingEventsResponseMessage ResponseClass="Success"><ResponseCode>NoError</ResponseCode>` +
      `<Notifications><x:Notification xmlns:x="${T}"><x:SubscriptionId>s2</x:SubscriptionId><x:StatusEvent/>` +
      `</x:Notification></Notifications></GetStreamingEventsResponseMessage></ResponseMessages>` +
      `</GetStreamingEventsResponse></Body></Envelope>`;
    const [message] = messagesOf(parseEnvelope(body));
    expect((message as GetStreamingEventsMessage).notifications).toStrictEqual([
      { subscriptionId: 's2', moreEvents: false, events: [{ type: 'Status' }] },
    ]);
  });

  it('accepts the GetEvents Notification in the types namespace as well', () => {
    const body = fixture('getevents-status.xml')
      .toString()
      .replace('<m:Notification>', '<t:Notification>')
      .replace('</m:Notification>', '</t:Notification>');
    const [message] = messagesOf(parseEnvelope(body));
    expect(message).toMatchObject({ kind: 'GetEvents', notification: { subscriptionId: 'pull-sub-7' } });
  });

  it('ignores look-alike elements in a foreign namespace', () => {
    const body = streaming(
      '<m:Notifications><m:Notification><t:SubscriptionId>s1</t:SubscriptionId>' +
        '<x:NewMailEvent xmlns:x="urn:not-ews"><x:TimeStamp>t</x:TimeStamp></x:NewMailEvent>' +
        '<t:StatusEvent/></m:Notification></m:Notifications>',
    );
    const [message] = messagesOf(parseEnvelope(body));
    expect((message as GetStreamingEventsMessage).notifications[0]?.events).toStrictEqual([{ type: 'Status' }]);
  });

  it('refuses an Envelope in another namespace (SOAP 1.2, the docs-site https variant, none)', () => {
    for (const ns of ['http://www.w3.org/2003/05/soap-envelope', 'https://schemas.xmlsoap.org/soap/envelope/']) {
      const err = thrown(() => parseEnvelope(`<s:Envelope xmlns:s="${ns}"><s:Body/></s:Envelope>`));
      expect(err).toBeInstanceOf(EwsParseError);
      expect((err as Error).message).toContain(ns);
    }
    expect(thrown(() => parseEnvelope('<Envelope><Body/></Envelope>'))).toBeInstanceOf(EwsParseError);
  });
});

describe('forward compatibility', () => {
  it('ignores unknown header entries, unknown message parts and anything after the Body payload', () => {
    const body =
      `<s:Envelope xmlns:s="${SOAP}"><s:Header><x:Trace xmlns:x="urn:x">abc</x:Trace>` +
      `<t:ServerVersionInfo xmlns:t="${T}" MajorVersion="15" Future="1"><t:Child/></t:ServerVersionInfo></s:Header>` +
      `<s:Body><m:UnsubscribeResponse xmlns:m="${M}"><m:Extra>1</m:Extra><m:ResponseMessages>` +
      `<m:UnsubscribeResponseMessage ResponseClass="Success" Future="x"><m:ResponseCode>NoError</m:ResponseCode>` +
      `<m:FutureField><m:ResponseCode>ErrorNotMe</m:ResponseCode></m:FutureField></m:UnsubscribeResponseMessage>` +
      `</m:ResponseMessages></m:UnsubscribeResponse><m:Trailer xmlns:m="${M}"/></s:Body><s:Extra/></s:Envelope>`;
    expect(parseEnvelope(body)).toStrictEqual({
      serverVersion: { majorVersion: 15 },
      body: {
        type: 'response',
        operation: 'Unsubscribe',
        messages: [{ kind: 'Unsubscribe', responseClass: 'Success', responseCode: 'NoError' }],
      },
    });
  });

  it('collects every MessageXml Value, and simple elements by local name', () => {
    const body = streaming(
      `<m:MessageXml><t:Value Name="BackOffMilliseconds"> 5000 </t:Value><t:Value Name="Policy">Default</t:Value>` +
        `<t:SubscriptionId>sub-1</t:SubscriptionId><t:Value>no name</t:Value></m:MessageXml>`,
    );
    const [message] = messagesOf(parseEnvelope(body));
    expect(message?.messageXml).toStrictEqual({
      BackOffMilliseconds: '5000',
      Policy: 'Default',
      SubscriptionId: 'sub-1',
      Value: 'no name',
    });
  });

  it('reads a fault without detail', () => {
    const body = `<s:Envelope xmlns:s="${SOAP}"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>Oops</faultstring></s:Fault></s:Body></s:Envelope>`;
    expect(parseEnvelope(body).body).toStrictEqual({ type: 'fault', fault: { faultCode: 's:Server', faultString: 'Oops' } });
  });

  it('reads Notifications, ErrorSubscriptionIds and ConnectionStatus in one message', () => {
    const body = streaming(
      '<m:Notifications><m:Notification><t:SubscriptionId>a</t:SubscriptionId><t:StatusEvent/></m:Notification>' +
        '<m:Notification><t:SubscriptionId>b</t:SubscriptionId><t:StatusEvent/></m:Notification></m:Notifications>' +
        '<m:ErrorSubscriptionIds><m:SubscriptionId>c</m:SubscriptionId></m:ErrorSubscriptionIds>' +
        '<m:ConnectionStatus>OK</m:ConnectionStatus>',
    );
    const [message] = messagesOf(parseEnvelope(body));
    expect(message).toMatchObject({
      notifications: [{ subscriptionId: 'a' }, { subscriptionId: 'b' }],
      errorSubscriptionIds: ['c'],
      connectionStatus: 'OK',
    });
  });
});

describe('structural errors', () => {
  it.each([
    ['an envelope without Body', `<s:Envelope xmlns:s="${SOAP}"><s:Header/></s:Envelope>`, /no Body/],
    ['an empty Body', `<s:Envelope xmlns:s="${SOAP}"><s:Body/></s:Envelope>`, /Body is empty/],
    [
      'a Body holding something that is not a response',
      `<s:Envelope xmlns:s="${SOAP}"><s:Body><x xmlns="urn:x"/></s:Body></s:Envelope>`,
      /Unsupported SOAP Body content <x> in namespace urn:x/,
    ],
    [
      'a message without ResponseClass',
      `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetEventsResponse xmlns:m="${M}"><m:ResponseMessages>` +
        `<m:GetEventsResponseMessage/></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>`,
      /no ResponseClass/,
    ],
    [
      'a Notification without SubscriptionId',
      streaming('<m:Notifications><m:Notification><t:StatusEvent/></m:Notification></m:Notifications>'),
      /no SubscriptionId/,
    ],
    [
      'an event without TimeStamp',
      streaming(
        '<m:Notifications><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:NewMailEvent>' +
          '<t:ItemId Id="i"/><t:ParentFolderId Id="p"/></t:NewMailEvent></m:Notification></m:Notifications>',
      ),
      /no TimeStamp/,
    ],
    [
      'an event with both ItemId and FolderId',
      streaming(
        '<m:Notifications><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:CreatedEvent>' +
          '<t:TimeStamp>x</t:TimeStamp><t:ItemId Id="i"/><t:FolderId Id="f"/><t:ParentFolderId Id="p"/>' +
          '</t:CreatedEvent></m:Notification></m:Notifications>',
      ),
      /exactly one of ItemId and FolderId/,
    ],
    [
      'a Moved event without OldParentFolderId',
      streaming(
        '<m:Notifications><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:MovedEvent>' +
          '<t:TimeStamp>x</t:TimeStamp><t:ItemId Id="i"/><t:ParentFolderId Id="p"/><t:OldItemId Id="o"/>' +
          '</t:MovedEvent></m:Notification></m:Notifications>',
      ),
      /no OldParentFolderId/,
    ],
    [
      'an id element without Id',
      streaming(
        '<m:Notifications><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:NewMailEvent>' +
          '<t:TimeStamp>x</t:TimeStamp><t:ItemId ChangeKey="c"/><t:ParentFolderId Id="p"/>' +
          '</t:NewMailEvent></m:Notification></m:Notifications>',
      ),
      /<t:ItemId> has no Id attribute/,
    ],
    [
      'a MoreEvents that is not a boolean',
      streaming(
        '<m:Notifications><m:Notification><t:SubscriptionId>s</t:SubscriptionId><t:MoreEvents>maybe</t:MoreEvents>' +
          '<t:StatusEvent/></m:Notification></m:Notifications>',
      ),
      /not a boolean/,
    ],
    [
      'an unknown SubscriptionStatus',
      `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:SendNotificationResult xmlns:m="${M}">` +
        `<m:SubscriptionStatus>Maybe</m:SubscriptionStatus></m:SendNotificationResult></s:Body></s:Envelope>`,
      /Unknown SubscriptionStatus/,
    ],
    ['no envelope at all', '<!-- nothing -->', /holds no SOAP envelope/],
    ['two envelopes', `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:UnsubscribeResponse xmlns:m="${M}"/></s:Body></s:Envelope>`.repeat(2), /Expected one SOAP envelope, found 2/],
  ])('refuses %s with EwsParseError', (_name, body, message) => {
    const err = thrown(() => parseEnvelope(body));
    expect(err).toBeInstanceOf(EwsParseError);
    expect((err as Error).message).toMatch(message);
  });

  it('keeps the response code absent on the wire as NoError only for Success', () => {
    const body = (cls: string): string =>
      `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:UnsubscribeResponse xmlns:m="${M}"><m:ResponseMessages>` +
      `<m:UnsubscribeResponseMessage ResponseClass="${cls}"/></m:ResponseMessages></m:UnsubscribeResponse></s:Body></s:Envelope>`;
    expect(messagesOf(parseEnvelope(body('Success')))[0]?.responseCode).toBe('NoError');
    expect(messagesOf(parseEnvelope(body('Error')))[0]?.responseCode).toBe('');
  });
});

describe('EnvelopeParser API', () => {
  it('validates its options, naming the option', () => {
    expect(() => new EnvelopeParser({ maxEnvelopeBytes: 0 })).toThrow(/maxEnvelopeBytes must be a positive integer/);
    expect(() => new EnvelopeParser({ maxEnvelopeBytes: 1.5 })).toThrow(RangeError);
    expect(() => new EnvelopeParser({ httpStatus: 42 })).toThrow(/httpStatus must be an integer 100–599/);
    expect(DEFAULT_MAX_ENVELOPE_BYTES).toBe(8 * 1024 * 1024);
  });

  it('returns each envelope from the write() that closed it, and nothing pending at end()', () => {
    const a = Buffer.from(fixture('streaming-connection-ok.xml').toString().trimEnd());
    const b = fixture('streaming-connection-closed.xml');
    const parser = new EnvelopeParser();
    expect(parser.write(a.subarray(0, a.length - 1))).toEqual([]);
    const first = parser.write(Buffer.concat([a.subarray(a.length - 1), b.subarray(0, 10)]));
    expect(first).toHaveLength(1);
    expect(parser.write(b.subarray(10))).toHaveLength(1);
    expect(parser.end()).toEqual([]);
    expect(parser.end()).toEqual([]);
    expect(() => parser.write(a)).toThrow(/after end/);
  });

  it('parses an empty or blank stream to nothing', () => {
    expect(parseWhole(new Uint8Array())).toEqual([]);
    expect(parseWhole(Buffer.from(' \r\n\t '))).toEqual([]);
  });

  it('accepts comments, processing instructions and whitespace between envelopes', () => {
    const a = fixture('streaming-connection-ok.xml').toString();
    const stream = `<!-- keep-alive -->\r\n${a}\n<?xml-stylesheet href="x"?>\n<!-- <?xml version="1.0"?> -->${a}\r\n`;
    expect(parseWhole(Buffer.from(stream))).toHaveLength(2);
  });

  it('refuses text between envelopes', () => {
    const a = fixture('streaming-connection-ok.xml').toString();
    expect(thrown(() => parseWhole(Buffer.from(`${a}garbage${a}`)))).toBeInstanceOf(EwsParseError);
  });

  it('reads string bodies like byte bodies, and ignores a leading byte-order mark', () => {
    const bytes = fixture('unsubscribe.xml');
    const expected = parseEnvelope(bytes);
    expect(parseEnvelope(bytes.toString('utf8'))).toStrictEqual(expected);
    expect(parseEnvelope(`\uFEFF${bytes.toString('utf8')}`)).toStrictEqual(expected);
    expect(parseEnvelope(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]))).toStrictEqual(expected);
  });
});

describe('leaf text trimming', () => {
  it('trims only XML whitespace, keeping U+00A0 and U+3000 that belong to an id', () => {
    const env = parseEnvelope(
      `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>` +
        `<m:SubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">` +
        `<m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
        `<m:SubscriptionId>\n \u00A0sub\u3000 \t</m:SubscriptionId></m:SubscribeResponseMessage></m:ResponseMessages>` +
        `</m:SubscribeResponse></s:Body></s:Envelope>`,
    );
    expect(env.body.type).toBe('response');
    const msg = env.body.type === 'response' ? env.body.messages[0] : undefined;
    expect(msg?.kind === 'Subscribe' ? msg.subscriptionId : undefined).toBe('\u00A0sub\u3000');
  });
});
