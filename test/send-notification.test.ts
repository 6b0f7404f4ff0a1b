import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Id } from '../lib/entry-types.js';
import { type NotificationEvent, type PushNotification } from '../lib/index.js';
import {
  buildSendNotification,
  buildSendNotificationError,
  buildSendNotificationResult,
  type EwsEnvelope,
} from '../lib/wire.js';
import { parseEnvelope } from '../lib/ews/parser.js';
import { EWS_NS, schemaAvailable, schemaSkipReason, validateSoapBody } from './helpers/schema.js';
import { childNames, find, findAll, parseXmlTree } from './helpers/xml-tree.js';
import { thrown } from './helpers/parser-fixtures.js';

const TS = '2024-05-01T10:20:30Z';
const item: Id = { id: 'AAMkADEzItem=', changeKey: 'CQAAABYAAAC' };
const folder: Id = { id: 'AAMkADEzFolder=', changeKey: 'AQAAABYAAAB' };
const parent: Id = { id: 'AAMkADEzInbox=' };
const oldParent: Id = { id: 'AAMkADEzDrafts=', changeKey: 'AQAAAA==' };
const HOSTILE = `x<y&z>"q'r]]>s\tt\nu 😀`;

/** Every event type, item and folder variants, with and without watermarks. */
const EVENTS: readonly NotificationEvent[] = [
  { type: 'Status', watermark: 'W0' },
  { type: 'NewMail', watermark: 'W1', timeStamp: TS, itemId: item, parentFolderId: parent },
  { type: 'Created', watermark: 'W2', timeStamp: TS, itemId: item, parentFolderId: parent },
  { type: 'Created', watermark: 'W3', timeStamp: TS, folderId: folder, parentFolderId: parent },
  { type: 'Deleted', watermark: 'W4', timeStamp: TS, itemId: item, parentFolderId: parent },
  { type: 'Modified', watermark: 'W5', timeStamp: TS, itemId: item, parentFolderId: parent },
  { type: 'Modified', watermark: 'W6', timeStamp: TS, folderId: folder, parentFolderId: parent, unreadCount: 7 },
  { type: 'Modified', watermark: 'W6b', timeStamp: TS, folderId: folder, parentFolderId: parent, unreadCount: 0 },
  { type: 'Moved', watermark: 'W7', timeStamp: TS, itemId: item, parentFolderId: parent, oldItemId: { id: 'old-item' }, oldParentFolderId: oldParent },
  { type: 'Moved', watermark: 'W8', timeStamp: TS, folderId: folder, parentFolderId: parent, oldFolderId: { id: 'old-folder', changeKey: 'k' }, oldParentFolderId: oldParent },
  { type: 'Copied', watermark: 'W9', timeStamp: TS, itemId: item, parentFolderId: parent, oldItemId: { id: 'src-item' }, oldParentFolderId: oldParent },
  { type: 'Copied', watermark: 'W10', timeStamp: '2024-05-01T10:20:30.1234567+02:00', folderId: folder, parentFolderId: parent, oldFolderId: { id: 'src-folder' }, oldParentFolderId: oldParent },
  { type: 'FreeBusyChanged', watermark: 'W11', timeStamp: TS, itemId: item, parentFolderId: parent },
  { type: 'Status' },
];

const pull: PushNotification = { subscriptionId: 'sub-1', previousWatermark: 'W-prev', moreEvents: true, events: EVENTS };
/** From a streaming source: no watermark anywhere, and none may be invented. */
const streaming: PushNotification = {
  subscriptionId: 'sub-2',
  moreEvents: false,
  events: EVENTS.map((e) => {
    const { watermark: _dropped, ...rest } = e;
    return rest as NotificationEvent;
  }),
};
const idle: PushNotification = { subscriptionId: 'sub-3', previousWatermark: 'W', moreEvents: false, events: [{ type: 'Status', watermark: 'W' }] };
const hostile: PushNotification = {
  subscriptionId: HOSTILE,
  previousWatermark: HOSTILE,
  moreEvents: false,
  events: [
    { type: 'Status', watermark: HOSTILE },
    { type: 'Moved', watermark: HOSTILE, timeStamp: TS, itemId: { id: HOSTILE, changeKey: HOSTILE }, parentFolderId: { id: HOSTILE }, oldItemId: { id: HOSTILE }, oldParentFolderId: { id: HOSTILE, changeKey: HOSTILE } },
  ],
};
const NOTIFICATIONS: readonly [string, PushNotification][] = [
  ['pull (every event type)', pull],
  ['streaming (no watermarks)', streaming],
  ['idle status', idle],
  ['hostile text', hostile],
  // One notification per event, so a failure names the event.
  ...EVENTS.map((e, i): [string, PushNotification] => [`single ${e.type}#${i}`, { subscriptionId: 's', moreEvents: false, events: [e] }]),
];

describe.skipIf(!schemaAvailable)(`SendNotification builders against the EWS schema${schemaAvailable ? '' : ` — ${schemaSkipReason}`}`, () => {
  it('every notification, an error-class notification and both results are schema-valid', async () => {
    const envelopes: [string, string][] = [
      ...NOTIFICATIONS.map(([label, n]): [string, string] => [label, buildSendNotification(n)]),
      [
        'error class with notification',
        buildSendNotification(idle, {
          responseClass: 'Error',
          responseCode: 'ErrorReadEventsFailed',
          messageText: HOSTILE,
          descriptiveLinkKey: 0,
          messageXml: { SubscriptionId: 'sub-3', Other: HOSTILE },
          requestServerVersion: 'Exchange2010_SP1',
        }),
      ],
      ['warning class', buildSendNotification(idle, { responseClass: 'Warning', responseCode: 'ErrorMissedNotificationEvents' })],
      ['result OK', buildSendNotificationResult('OK')],
      ['result Unsubscribe', buildSendNotificationResult('Unsubscribe')],
    ];
    const results = await Promise.all(envelopes.map(([, xml]) => validateSoapBody(xml)));
    const failures = results.flatMap((r, i) => (r.valid ? [] : [`${envelopes[i]![0]}: ${r.errors.join('; ')}`]));
    expect(failures).toEqual([]);
    // SendNotification: body + the RequestServerVersion header; the listener's result has no header.
    expect(results.slice(0, -2).every((r) => r.parts === 2)).toBe(true);
    expect(results.slice(-2).every((r) => r.parts === 1)).toBe(true);
  });

  it('the Exchange-faithful error push fails the published schema only for its missing Notification', async () => {
    const result = await validateSoapBody(buildSendNotificationError({ subscriptionId: 'sub-9' }));
    expect(result.valid).toBe(false);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/SendNotificationResponseMessage.*Missing child element.*Notification/);
  });

  it('negative control: a reordered event or a missing ParentFolderId is rejected', async () => {
    const good = buildSendNotification({ subscriptionId: 's', moreEvents: false, events: [EVENTS[1]!] });
    const swapped = good.replace(
      /(<t:TimeStamp>[^<]*<\/t:TimeStamp>)(<t:ItemId [^>]*\/>)/,
      (_m, ts: string, id: string) => `${id}${ts}`,
    );
    const noParent = good.replace(/<t:ParentFolderId [^>]*\/>/, '');
    expect(swapped).not.toBe(good);
    expect(noParent).not.toBe(good);
    const [a, b] = await Promise.all([validateSoapBody(swapped), validateSoapBody(noParent)]);
    expect([a.valid, b.valid]).toEqual([false, false]);
  });

  it('random notifications (fast-check) are all schema-valid', async () => {
    const samples = fc.sample(arbNotification, { numRuns: 150, seed: 4242 });
    const results = await Promise.all(samples.map((n) => validateSoapBody(buildSendNotification(n))));
    const failures = results.flatMap((r, i) => (r.valid ? [] : [`${JSON.stringify(samples[i])}: ${r.errors.join('; ')}`]));
    expect(failures).toEqual([]);
  });
});

describe('SendNotification envelope shape', () => {
  it('is a soap11 envelope with t:RequestServerVersion in the header, as Exchange sends it', () => {
    const xml = buildSendNotification(idle);
    expect(xml.startsWith('<?xml version="1.0" encoding="utf-8"?><soap11:Envelope xmlns:soap11=')).toBe(true);
    const root = parseXmlTree(xml);
    expect([root.uri, root.local]).toEqual([EWS_NS.soap, 'Envelope']);
    expect(childNames(root)).toEqual(['Header', 'Body']);
    const version = root.children[0]!.children[0]!;
    expect([version.uri, version.local, version.attrs]).toEqual([EWS_NS.t, 'RequestServerVersion', { Version: 'Exchange2013' }]);
    const other = parseXmlTree(buildSendNotification(idle, { requestServerVersion: 'Exchange2010_SP2' }));
    expect(find(other, 'RequestServerVersion').attrs).toEqual({ Version: 'Exchange2010_SP2' });
    const message = find(root, 'SendNotificationResponseMessage');
    expect(message.attrs).toEqual({ ResponseClass: 'Success' });
    expect(childNames(message)).toEqual(['ResponseCode', 'Notification']);
    expect(find(message, 'ResponseCode').text).toBe('NoError');
    expect([message.uri, find(message, 'Notification').uri, find(message, 'SubscriptionId').uri]).toEqual([EWS_NS.m, EWS_NS.m, EWS_NS.t]);
  });

  it('writes Notification children and every event field in schema order, events in wire order', () => {
    const n = find(parseXmlTree(buildSendNotification(pull)), 'Notification');
    expect(childNames(n)).toEqual(['SubscriptionId', 'PreviousWatermark', 'MoreEvents', ...EVENTS.map((e) => `${e.type}Event`)]);
    expect(find(n, 'MoreEvents').text).toBe('true');
    const events = n.children.slice(3);
    expect(events.map(childNames)).toEqual([
      ['Watermark'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId'],
      ['Watermark', 'TimeStamp', 'FolderId', 'ParentFolderId'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId'],
      ['Watermark', 'TimeStamp', 'FolderId', 'ParentFolderId', 'UnreadCount'],
      ['Watermark', 'TimeStamp', 'FolderId', 'ParentFolderId', 'UnreadCount'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId', 'OldItemId', 'OldParentFolderId'],
      ['Watermark', 'TimeStamp', 'FolderId', 'ParentFolderId', 'OldFolderId', 'OldParentFolderId'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId', 'OldItemId', 'OldParentFolderId'],
      ['Watermark', 'TimeStamp', 'FolderId', 'ParentFolderId', 'OldFolderId', 'OldParentFolderId'],
      ['Watermark', 'TimeStamp', 'ItemId', 'ParentFolderId'],
      [],
    ]);
    expect(findAll(n, 'Watermark').map((w) => w.text)).toEqual(EVENTS.flatMap((e) => (e.watermark === undefined ? [] : [e.watermark])));
    expect(find(events[6]!, 'UnreadCount').text).toBe('7');
    expect(find(events[1]!, 'ItemId').attrs).toEqual({ Id: item.id, ChangeKey: item.changeKey });
    expect(find(events[1]!, 'ParentFolderId').attrs).toEqual({ Id: parent.id });
  });

  it('never invents a watermark: a streaming notification has no Watermark or PreviousWatermark', () => {
    const xml = buildSendNotification(streaming);
    expect(xml).not.toContain('Watermark');
    const n = find(parseXmlTree(xml), 'Notification');
    expect(childNames(n).slice(0, 3)).toEqual(['SubscriptionId', 'MoreEvents', 'StatusEvent']);
    expect(find(n, 'StatusEvent').children).toEqual([]);
  });

  it('does not write the bridge-only mailbox field', () => {
    const xml = buildSendNotification({ ...idle, mailbox: 'alice@contoso.com' });
    expect(xml).toBe(buildSendNotification(idle));
  });

  it('error-class options: MessageText, ResponseCode, DescriptiveLinkKey, MessageXml, then Notification', () => {
    const message = find(
      parseXmlTree(
        buildSendNotification(idle, {
          responseClass: 'Error',
          responseCode: 'ErrorReadEventsFailed',
          messageText: 'm',
          descriptiveLinkKey: 0,
          messageXml: { SubscriptionId: 'sub-3', B: HOSTILE },
        }),
      ),
      'SendNotificationResponseMessage',
    );
    expect(message.attrs).toEqual({ ResponseClass: 'Error' });
    expect(childNames(message)).toEqual(['MessageText', 'ResponseCode', 'DescriptiveLinkKey', 'MessageXml', 'Notification']);
    const values = find(message, 'MessageXml').children;
    expect(values.map((v) => [v.uri, v.local, v.attrs, v.text])).toEqual([
      [EWS_NS.t, 'Value', { Name: 'SubscriptionId' }, 'sub-3'],
      [EWS_NS.t, 'Value', { Name: 'B' }, HOSTILE],
    ]);
  });

  it('buildSendNotificationError writes what Exchange sends: Error class, code, link key 0, SubscriptionId in MessageXml, no Notification', () => {
    const message = find(parseXmlTree(buildSendNotificationError({ subscriptionId: 'sub-9', messageXml: { Extra: 'e' } })), 'SendNotificationResponseMessage');
    expect(message.attrs).toEqual({ ResponseClass: 'Error' });
    expect(childNames(message)).toEqual(['MessageText', 'ResponseCode', 'DescriptiveLinkKey', 'MessageXml']);
    expect(find(message, 'ResponseCode').text).toBe('ErrorReadEventsFailed');
    expect(find(message, 'DescriptiveLinkKey').text).toBe('0');
    expect(find(message, 'MessageXml').children.map((v) => [v.attrs.Name, v.text])).toEqual([
      ['SubscriptionId', 'sub-9'],
      ['Extra', 'e'],
    ]);
  });

  it('hostile text reads back exactly', () => {
    const n = find(parseXmlTree(buildSendNotification(hostile)), 'Notification');
    expect(find(n, 'SubscriptionId').text).toBe(HOSTILE);
    expect(find(n, 'PreviousWatermark').text).toBe(HOSTILE);
    expect(find(n, 'ItemId').attrs).toEqual({ Id: HOSTILE, ChangeKey: HOSTILE });
    expect(buildSendNotification(hostile)).not.toContain(']]>');
  });

  it('SendNotificationResult carries the status', () => {
    for (const status of ['OK', 'Unsubscribe'] as const) {
      const root = parseXmlTree(buildSendNotificationResult(status));
      expect(childNames(root)).toEqual(['Body']);
      const result = find(root, 'SendNotificationResult');
      expect([result.uri, childNames(result), find(result, 'SubscriptionStatus').text]).toEqual([EWS_NS.m, ['SubscriptionStatus'], status]);
    }
  });
});

describe('SendNotification argument validation names the field', () => {
  const one = (e: unknown): PushNotification => ({ subscriptionId: 's', moreEvents: false, events: [e as NotificationEvent] });
  const base = { type: 'NewMail', timeStamp: TS, itemId: item, parentFolderId: parent };
  const cases: [string, () => unknown, RegExp, ErrorConstructor][] = [
    ['no events', () => buildSendNotification({ subscriptionId: 's', moreEvents: false, events: [] }), /^notification\.events must not be empty/, RangeError],
    ['events not array', () => buildSendNotification({ subscriptionId: 's', moreEvents: false } as never), /^notification\.events must be an array/, TypeError],
    ['subscriptionId empty', () => buildSendNotification({ ...idle, subscriptionId: '' }), /^notification\.subscriptionId must not be empty/, RangeError],
    ['previousWatermark empty', () => buildSendNotification({ ...idle, previousWatermark: '' }), /^notification\.previousWatermark must not be empty/, RangeError],
    ['moreEvents missing', () => buildSendNotification({ subscriptionId: 's', events: idle.events } as never), /^notification\.moreEvents must be a boolean/, TypeError],
    ['notification null', () => buildSendNotification(null as never), /^notification must be an object/, TypeError],
    ['type unknown', () => buildSendNotification(one({ ...base, type: 'Renamed' })), /^notification\.events\[0\]\.type must be an event type/, RangeError],
    ['both ids', () => buildSendNotification(one({ ...base, folderId: folder })), /^notification\.events\[0\] must have exactly one of itemId and folderId/, RangeError],
    ['no id', () => buildSendNotification(one({ ...base, itemId: undefined })), /^notification\.events\[0\] must have exactly one of itemId and folderId/, RangeError],
    ['no parent', () => buildSendNotification(one({ ...base, parentFolderId: undefined })), /^notification\.events\[0\]\.parentFolderId must be an object/, TypeError],
    ['empty id', () => buildSendNotification(one({ ...base, itemId: { id: '' } })), /^notification\.events\[0\]\.itemId\.id must not be empty/, RangeError],
    ['bad timeStamp', () => buildSendNotification(one({ ...base, timeStamp: '2024-05-01 10:20' })), /^notification\.events\[0\]\.timeStamp must be an xs:dateTime/, RangeError],
    ['missing timeStamp', () => buildSendNotification(one({ ...base, timeStamp: undefined })), /^notification\.events\[0\]\.timeStamp must be a string/, TypeError],
    ['empty watermark', () => buildSendNotification(one({ type: 'Status', watermark: '' })), /^notification\.events\[0\]\.watermark must not be empty/, RangeError],
    ['unreadCount on NewMail', () => buildSendNotification(one({ ...base, unreadCount: 1 })), /^notification\.events\[0\]\.unreadCount is only allowed on Modified/, RangeError],
    ['unreadCount fraction', () => buildSendNotification(one({ ...base, type: 'Modified', unreadCount: 1.5 })), /^notification\.events\[0\]\.unreadCount must be/, RangeError],
    ['old ids on Created', () => buildSendNotification(one({ ...base, type: 'Created', oldItemId: item })), /^notification\.events\[0\]: oldItemId\/oldFolderId\/oldParentFolderId are only allowed on Moved and Copied/, RangeError],
    ['moved without old id', () => buildSendNotification(one({ ...base, type: 'Moved', oldParentFolderId: parent })), /^notification\.events\[0\] must have exactly one of oldItemId and oldFolderId/, RangeError],
    ['moved without old parent', () => buildSendNotification(one({ ...base, type: 'Copied', oldItemId: item })), /^notification\.events\[0\]\.oldParentFolderId must be an object/, TypeError],
    ['second event bad', () => buildSendNotification({ ...idle, events: [idle.events[0]!, { type: 'Status', watermark: 5 } as never] }), /^notification\.events\[1\]\.watermark must be a string/, TypeError],
    ['illegal char', () => buildSendNotification({ ...idle, subscriptionId: 'a\u0000' }), /^notification\.subscriptionId contains a character not allowed in XML 1\.0/, RangeError],
    ['responseClass', () => buildSendNotification(idle, { responseClass: 'Fatal' as never }), /^responseClass must be Success, Warning or Error/, RangeError],
    ['responseCode', () => buildSendNotification(idle, { responseCode: 'Error Read' }), /^responseCode must be an EWS response code name/, RangeError],
    ['descriptiveLinkKey', () => buildSendNotification(idle, { descriptiveLinkKey: 0.5 }), /^descriptiveLinkKey must be/, RangeError],
    ['messageXml value', () => buildSendNotification(idle, { messageXml: { A: 1 as never } }), /^messageXml\.A must be a string/, TypeError],
    ['requestServerVersion', () => buildSendNotification(idle, { requestServerVersion: 'Exchange2007' as never }), /^requestServerVersion must be one of/, RangeError],
    ['error subscriptionId', () => buildSendNotificationError({ subscriptionId: '' }), /^subscriptionId must not be empty/, RangeError],
    ['error SubscriptionId twice', () => buildSendNotificationError({ subscriptionId: 's', messageXml: { SubscriptionId: 'x' } }), /^messageXml must not repeat SubscriptionId/, RangeError],
    ['result status', () => buildSendNotificationResult('Ok' as never), /^status must be 'OK' or 'Unsubscribe'/, RangeError],
  ];
  it.each(cases)('%s', (_label, call, message, type) => {
    const error = thrown(call);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------
// Round trip through the wire-layer parser (lib/ews/parser.ts).

const sendNotificationEnvelope = (notification: PushNotification | undefined, fields: Record<string, unknown> = {}): EwsEnvelope => ({
  body: {
    type: 'response',
    operation: 'SendNotification',
    messages: [{ kind: 'SendNotification', responseClass: 'Success', responseCode: 'NoError', ...fields, ...(notification ? { notification } : {}) }],
  },
});

describe('round trip through parseEnvelope', () => {
  it('parseEnvelope(buildSendNotification(n)) gives back n for every fixture', () => {
    for (const [label, n] of NOTIFICATIONS) {
      const envelope = parseEnvelope(buildSendNotification(n));
      expect(envelope, label).toEqual(sendNotificationEnvelope(n));
      const message = envelope.body.type === 'response' ? envelope.body.messages[0] : undefined;
      expect(message?.kind === 'SendNotification' ? message.notification : undefined, label).toStrictEqual(n);
    }
  });

  it('error-class notifications and the Exchange-faithful error push round-trip', () => {
    const fields = { responseClass: 'Error', responseCode: 'ErrorReadEventsFailed', messageText: HOSTILE, descriptiveLinkKey: 0, messageXml: { SubscriptionId: 'sub-3', Other: HOSTILE } } as const;
    expect(parseEnvelope(buildSendNotification(idle, fields))).toEqual(sendNotificationEnvelope(idle, fields));
    expect(parseEnvelope(buildSendNotificationError({ subscriptionId: 'sub-9', messageText: 'gone' }))).toEqual(
      sendNotificationEnvelope(undefined, { responseClass: 'Error', responseCode: 'ErrorReadEventsFailed', messageText: 'gone', descriptiveLinkKey: 0, messageXml: { SubscriptionId: 'sub-9' } }),
    );
  });

  it('SendNotificationResult round-trips', () => {
    for (const status of ['OK', 'Unsubscribe'] as const) {
      expect(parseEnvelope(buildSendNotificationResult(status))).toEqual({ body: { type: 'sendNotificationResult', subscriptionStatus: status } });
    }
  });

  it('random notifications round-trip exactly (fast-check)', () => {
    fc.assert(
      fc.property(arbNotification, (n) => {
        const message = parseEnvelope(buildSendNotification(n)).body;
        expect(message.type === 'response' && message.messages[0]?.kind === 'SendNotification' ? message.messages[0].notification : undefined).toStrictEqual(n);
      }),
      { numRuns: 300, seed: 2024 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Arbitraries: any text XML 1.0 can carry, any event shape the model allows.

const xmlChar = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'Z', '0', '=', '+', '/', ' ', '<', '>', '&', '"', "'", ']', '\t', '\n', '\r') },
  { weight: 2, arbitrary: fc.integer({ min: 0x20, max: 0xd7ff }).map((c) => String.fromCodePoint(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);
/** Attribute values (ids, change keys): any XML text, whitespace included, but not only whitespace (refused both ways). */
const xmlString = fc
  .array(xmlChar, { minLength: 1, maxLength: 12 })
  .map((cs) => cs.join(''))
  .filter((s) => !/^[ \t\n\r]+$/.test(s));
/**
 * Element text (subscription ids, watermarks): the parser trims these leaf values (real servers
 * never pad base64 ids; pretty-printers do), so edge whitespace cannot round-trip. It trims with
 * String#trim, i.e. Unicode whitespace such as U+00A0 too, not only XML's four — hence `\s`.
 */
const xmlText = xmlString.filter((s) => !/^\s|\s$/.test(s));
const arbId: fc.Arbitrary<Id> = fc.record({ id: xmlString, changeKey: xmlString }, { requiredKeys: ['id'], noNullPrototype: true });
const arbTimeStamp = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const arbEvent: fc.Arbitrary<NotificationEvent> = fc.oneof(
  fc.record({ type: fc.constant('Status' as const), watermark: xmlText }, { requiredKeys: ['type'], noNullPrototype: true }),
  fc
    .record({
      type: fc.constantFrom('NewMail' as const, 'Created' as const, 'Deleted' as const, 'Modified' as const, 'FreeBusyChanged' as const),
      watermark: fc.option(xmlText, { nil: undefined }),
      timeStamp: arbTimeStamp,
      isFolder: fc.boolean(),
      id: arbId,
      parentFolderId: arbId,
      unreadCount: fc.option(fc.integer({ min: 0, max: 100000 }), { nil: undefined }),
    })
    .map(({ type, watermark, timeStamp, isFolder, id, parentFolderId, unreadCount }) => ({
      type,
      ...(watermark === undefined ? {} : { watermark }),
      timeStamp,
      ...(isFolder ? { folderId: id } : { itemId: id }),
      parentFolderId,
      ...(type === 'Modified' && isFolder && unreadCount !== undefined ? { unreadCount } : {}),
    })),
  fc
    .record({
      type: fc.constantFrom('Moved' as const, 'Copied' as const),
      watermark: fc.option(xmlText, { nil: undefined }),
      timeStamp: arbTimeStamp,
      isFolder: fc.boolean(),
      id: arbId,
      parentFolderId: arbId,
      oldId: arbId,
      oldParentFolderId: arbId,
    })
    .map(({ type, watermark, timeStamp, isFolder, id, parentFolderId, oldId, oldParentFolderId }) => ({
      type,
      ...(watermark === undefined ? {} : { watermark }),
      timeStamp,
      ...(isFolder ? { folderId: id } : { itemId: id }),
      parentFolderId,
      ...(isFolder ? { oldFolderId: oldId } : { oldItemId: oldId }),
      oldParentFolderId,
    })),
);
const arbNotification: fc.Arbitrary<PushNotification> = fc
  .record({
    subscriptionId: xmlText,
    previousWatermark: fc.option(xmlText, { nil: undefined }),
    moreEvents: fc.boolean(),
    events: fc.array(arbEvent, { minLength: 1, maxLength: 6 }),
  })
  .map(({ previousWatermark, ...rest }) => ({ ...rest, ...(previousWatermark === undefined ? {} : { previousWatermark }) }));
