/**
 * Namespace resolution edge cases. The parser runs saxes without its namespace mode and resolves
 * prefixes itself (lib/ews/namespaces.ts), so these pin down the XML Namespaces 1.0 rules it must
 * keep: scopes, redeclaration, the default namespace, undeclared prefixes and reserved names.
 */
import { describe, expect, it } from 'vitest';
import { EwsParseError } from '../lib/entry-errors.js';
import { EnvelopeParser, parseEnvelope, type EwsEnvelope, type GetStreamingEventsMessage } from '../lib/wire.js';
import { parseBytewise, thrown } from './helpers/parser-fixtures.js';

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

/** A GetStreamingEvents envelope whose Notification holds `inner` after its SubscriptionId. */
function streaming(inner: string, subscriptionId = '<t:SubscriptionId>s1</t:SubscriptionId>'): string {
  return (
    `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetStreamingEventsResponse xmlns:m="${M}" xmlns:t="${T}">` +
    `<m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success">` +
    `<m:ResponseCode>NoError</m:ResponseCode><m:Notifications><m:Notification>${subscriptionId}${inner}` +
    `</m:Notification></m:Notifications></m:GetStreamingEventsResponseMessage>` +
    `</m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>`
  );
}

function notificationOf(envelope: EwsEnvelope): GetStreamingEventsMessage['notifications'][number] | undefined {
  if (envelope.body.type !== 'response') throw new Error(`expected a response body, got ${envelope.body.type}`);
  return (envelope.body.messages[0] as GetStreamingEventsMessage).notifications[0];
}

const newMail = (prefix: string, decl = ''): string =>
  `<${prefix}NewMailEvent${decl}><${prefix}TimeStamp>2024-03-05T09:00:00Z</${prefix}TimeStamp>` +
  `<${prefix}ItemId Id="i1"/><${prefix}ParentFolderId Id="p1"/></${prefix}NewMailEvent>`;

/** Expects an EwsParseError carrying a cause whose message contains `text`. */
function expectNamespaceError(body: string, text: string): void {
  const err = thrown(() => parseEnvelope(body));
  expect(err).toBeInstanceOf(EwsParseError);
  expect(err).toMatchObject({ code: 'EWS_PARSE_ERROR' });
  const cause = (err as Error).cause;
  expect(cause).toBeInstanceOf(Error);
  expect((cause as Error).message).toContain(text);
  expect((err as Error).message).toContain((cause as Error).message);
  // Chunking does not change the outcome.
  expect(thrown(() => parseBytewise(Buffer.from(body)))).toBeInstanceOf(EwsParseError);
}

describe('namespace scopes', () => {
  it('a prefix redeclared on a nested element applies inside it only, then the outer binding is back', () => {
    // `t` means a foreign namespace inside the first event (so it is a look-alike and ignored),
    // and the EWS types namespace again for the StatusEvent after it.
    const body = streaming(`${newMail('t:', ' xmlns:t="urn:not-ews"')}<t:StatusEvent/>`);
    expect(notificationOf(parseEnvelope(body))?.events).toStrictEqual([{ type: 'Status' }]);
    expect(parseBytewise(Buffer.from(body)).map(notificationOf)[0]?.events).toStrictEqual([{ type: 'Status' }]);
  });

  it('a foreign prefix redeclared to the EWS namespace on a nested element is read', () => {
    const body = streaming(
      `<x:Wrapper xmlns:x="urn:not-ews"><x:NewMailEvent/></x:Wrapper>${newMail('x:', ` xmlns:x="${T}"`)}`,
    );
    expect(notificationOf(parseEnvelope(body))?.events).toStrictEqual([
      { type: 'NewMail', timeStamp: '2024-03-05T09:00:00Z', itemId: { id: 'i1' }, parentFolderId: { id: 'p1' } },
    ]);
  });

  it('a default namespace changed on an inner element applies to its unprefixed descendants only', () => {
    const body = streaming(
      // Unprefixed event in the types namespace: read. Then `xmlns=""` takes the default away:
      // the same element in no namespace is ignored. The outer default (none) holds after both.
      `${newMail('', ` xmlns="${T}"`)}<Wrap xmlns="urn:other">${newMail('', ` xmlns="${T}"`)}</Wrap>` +
        `<StatusEvent xmlns=""/><StatusEvent/>`,
    );
    // Only the first event is a direct child of Notification in the types namespace; the second
    // is inside an unknown element (skipped), the last two are in no namespace.
    expect(notificationOf(parseEnvelope(body))?.events).toStrictEqual([
      { type: 'NewMail', timeStamp: '2024-03-05T09:00:00Z', itemId: { id: 'i1' }, parentFolderId: { id: 'p1' } },
    ]);
  });

  it('an unprefixed Envelope under a default namespace, with a default changed below it', () => {
    const body =
      `<Envelope xmlns="${SOAP}"><Body><UnsubscribeResponse xmlns="${M}"><ResponseMessages>` +
      `<UnsubscribeResponseMessage ResponseClass="Success"><ResponseCode>NoError</ResponseCode>` +
      `</UnsubscribeResponseMessage></ResponseMessages></UnsubscribeResponse></Body></Envelope>`;
    expect(parseEnvelope(body).body).toStrictEqual({
      type: 'response',
      operation: 'Unsubscribe',
      messages: [{ kind: 'Unsubscribe', responseClass: 'Success', responseCode: 'NoError' }],
    });
  });

  it('declarations do not leak from one envelope into the next', () => {
    const first = streaming('<t:StatusEvent/>');
    // The second envelope uses `m:`/`t:` without declaring them.
    const second = `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetEventsResponse/></s:Body></s:Envelope>`;
    const parser = new EnvelopeParser();
    expect(parser.write(Buffer.from(first + second))).toHaveLength(1);
    expect(parser.error).toBeInstanceOf(EwsParseError);
    expect((parser.error?.cause as Error).message).toContain('unbound namespace prefix: "m"');
  });

  it('unprefixed attributes have no namespace: a prefixed Id is not the Id attribute', () => {
    const body = streaming(
      `<t:NewMailEvent><t:TimeStamp>x</t:TimeStamp><t:ItemId t:Id="i1"/><t:ParentFolderId Id="p1"/></t:NewMailEvent>`,
    );
    const err = thrown(() => parseEnvelope(body));
    expect(err).toBeInstanceOf(EwsParseError);
    expect((err as Error).message).toContain('has no Id attribute');
  });
});

describe('namespace errors', () => {
  it('an undeclared element prefix is an EwsParseError', () => {
    expectNamespaceError(streaming('<q:StatusEvent/>'), 'unbound namespace prefix: "q"');
  });

  it('a prefix declared on an element that has closed is undeclared again', () => {
    expectNamespaceError(streaming('<x:A xmlns:x="urn:x"/><x:B/>'), 'unbound namespace prefix: "x"');
  });

  it('an undeclared attribute prefix is an EwsParseError', () => {
    expectNamespaceError(streaming('<t:StatusEvent q:flag="1"/>'), 'unbound namespace prefix: "q"');
  });

  it('xmlns:p="" is refused: undeclaring a prefix is XML 1.1 only', () => {
    expectNamespaceError(streaming('<t:StatusEvent xmlns:t=""/>'), 'invalid attempt to undefine prefix');
  });

  it('xmlns="" (no default namespace) is allowed', () => {
    const body = streaming('<StatusEvent xmlns=""/><t:StatusEvent/>');
    expect(notificationOf(parseEnvelope(body))?.events).toStrictEqual([{ type: 'Status' }]);
  });

  it('the reserved xml and xmlns prefixes and namespaces cannot be rebound', () => {
    expectNamespaceError(streaming('<t:StatusEvent xmlns:xml="urn:x"/>'), 'xml prefix must be bound');
    expectNamespaceError(streaming('<t:StatusEvent xmlns:xmlns="urn:x"/>'), 'xmlns prefix must be bound');
    expectNamespaceError(streaming('<t:StatusEvent xmlns:p="http://www.w3.org/2000/xmlns/"/>'), 'may not assign a prefix');
    expectNamespaceError(
      streaming('<t:StatusEvent xmlns="http://www.w3.org/XML/1998/namespace"/>'),
      'the default namespace may not be set',
    );
    expectNamespaceError(streaming('<xmlns:StatusEvent/>'), 'tags may not have "xmlns" as prefix');
    // The predeclared xml prefix needs no declaration.
    const body = streaming('<t:StatusEvent xml:lang="en"/>');
    expect(notificationOf(parseEnvelope(body))?.events).toStrictEqual([{ type: 'Status' }]);
  });

  it('names with two colons or an empty part are malformed', () => {
    expectNamespaceError(streaming('<t:Status:Event/>'), 'malformed name');
    expectNamespaceError(streaming('<t:StatusEvent t:a:b="1"/>'), 'malformed name');
  });

  it('two attributes with the same namespace and local name are duplicates', () => {
    expectNamespaceError(
      streaming('<t:StatusEvent xmlns:a="urn:same" xmlns:b="urn:same" a:x="1" b:x="2"/>'),
      'duplicate attribute: {urn:same}x',
    );
  });
});
