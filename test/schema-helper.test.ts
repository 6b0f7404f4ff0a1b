import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildGetEventsRequest, buildStreamingSubscribeRequest, buildUnsubscribeRequest } from '../lib/wire.js';
import { EWS_NS, SHARED_DIR, extractSoapParts, schemaAvailable, schemaSkipReason, validateSoapBody } from './helpers/schema.js';
import { find, parseXmlTree } from './helpers/xml-tree.js';

describe('extractSoapParts', () => {
  it('the schema helper cuts out standalone parts carrying their inherited namespaces', () => {
    const parts = extractSoapParts(buildStreamingSubscribeRequest({ folders: ['inbox'], impersonation: { sid: 'S-1' } }));
    expect(parts.map((p) => [p.kind, p.envelope, p.name])).toEqual([
      ['header', 0, `{${EWS_NS.t}}RequestServerVersion`],
      ['header', 0, `{${EWS_NS.t}}ExchangeImpersonation`],
      ['body', 0, `{${EWS_NS.m}}Subscribe`],
    ]);
    const body = parseXmlTree(parts[2]!.xml);
    expect([body.uri, find(body, 'EventType').uri]).toEqual([EWS_NS.m, EWS_NS.t]);
    expect(() => extractSoapParts('<a/>')).toThrow(/not a SOAP 1\.1 Envelope/);
    expect(() => extractSoapParts(`<s:Envelope xmlns:s="${EWS_NS.soap}"><s:Body/></s:Envelope>`)).toThrow(/Body has no child/);
  });

});

/** A GetStreamingEvents response shaped like Exchange 2016's: m:Notification inside m:Notifications. */
const streamingWithMNotification = (ns: 'm' | 't'): string =>
  `<Envelope xmlns="${EWS_NS.soap}"><soap11:Body xmlns:soap11="${EWS_NS.soap}">` +
  `<m:GetStreamingEventsResponse xmlns:m="${EWS_NS.m}" xmlns:t="${EWS_NS.t}"><m:ResponseMessages>` +
  `<m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications>` +
  `<${ns}:Notification><t:SubscriptionId>s1</t:SubscriptionId><t:CreatedEvent><t:TimeStamp>2024-05-01T10:20:30Z</t:TimeStamp>` +
  `<t:ItemId Id="i" ChangeKey="c"/><t:ParentFolderId Id="p"/></t:CreatedEvent></${ns}:Notification>` +
  `</m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></soap11:Body></Envelope>`;

describe.skipIf(!schemaAvailable)(`validateSoapBody${schemaAvailable ? '' : ` — ${schemaSkipReason}`}`, () => {
  it('reports malformed and non-SOAP input as invalid instead of throwing', async () => {
    const bad = await validateSoapBody('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x>');
    expect(bad.valid).toBe(false);
    const wrongNs = await validateSoapBody(
      buildUnsubscribeRequest({ subscriptionId: 's' }).replace('http://schemas.xmlsoap.org', 'https://schemas.xmlsoap.org'),
    );
    expect(wrongNs.valid).toBe(false);
    expect(wrongNs.errors.join()).toMatch(/SOAP 1\.1 Envelope/);
  });

  it('validates every envelope of a stream of envelopes', async () => {
    const one = buildGetEventsRequest({ subscriptionId: 's', watermark: 'w' });
    const broken = one.replace('<m:Watermark>w</m:Watermark>', '');
    const ok = await validateSoapBody(`${one}\r\n${one}${one}`);
    expect(ok).toMatchObject({ valid: true, parts: 6 });
    const notOk = await validateSoapBody(`${one}${broken}${one}`);
    expect(notOk.valid).toBe(false);
    expect(notOk.errors.every((e) => e.startsWith('body 1 '))).toBe(true);
  });

  it('accepts the real-server m:Notification deviation only when asked, and still checks the rest', async () => {
    const [strict, tolerant, schemaShape, brokenTolerant] = await Promise.all([
      validateSoapBody(streamingWithMNotification('m')),
      validateSoapBody(streamingWithMNotification('m'), { allowMessagesNotification: true }),
      validateSoapBody(streamingWithMNotification('t')),
      validateSoapBody(streamingWithMNotification('m').replace('<t:ParentFolderId Id="p"/>', ''), { allowMessagesNotification: true }),
    ]);
    expect(strict.valid).toBe(false);
    expect(strict.errors.join()).toMatch(/messages\}Notification': This element is not expected/);
    expect(tolerant).toMatchObject({ valid: true, errors: [] });
    expect(schemaShape.valid).toBe(true);
    expect(brokenTolerant.valid).toBe(false);
  });

  const realCapture = join(SHARED_DIR, 'ews-samples', 'real-exchange2016-getstreamingevents.xml');
  it.skipIf(!existsSync(realCapture))('the real Exchange 2016 capture validates once m:Notification is tolerated', async () => {
    const xml = readFileSync(realCapture, 'utf8');
    const [strict, tolerant] = await Promise.all([validateSoapBody(xml), validateSoapBody(xml, { allowMessagesNotification: true })]);
    expect(strict.valid).toBe(false);
    expect(tolerant).toMatchObject({ valid: true, errors: [] });
    expect(tolerant.parts).toBe(2);
  });
});

const nativeValidator = join(SHARED_DIR, 'tools', 'ews-validate');
const hasNativeXmllint = (() => {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return existsSync(nativeValidator);
  } catch {
    return false;
  }
})();

describe.skipIf(!schemaAvailable || !hasNativeXmllint)(
  `schema helper agrees with ../shared/tools/ews-validate${hasNativeXmllint ? '' : ' — native xmllint, python3 or the tool is missing; skipped'}`,
  () => {
    it('on a valid and an invalid envelope', async () => {
      const valid = buildStreamingSubscribeRequest({ folders: ['inbox', { id: 'x' }], impersonation: { smtpAddress: 'a@b' } });
      const invalid = valid.replace('<t:EventTypes>', '<t:EventTypes><t:EventType>Nope</t:EventType>');
      const dir = mkdtempSync(join(tmpdir(), 'ews-validate-'));
      try {
        const native = (xml: string): boolean => {
          const file = join(dir, 'e.xml');
          writeFileSync(file, xml);
          try {
            execFileSync(nativeValidator, [file], { stdio: 'pipe' });
            return true;
          } catch {
            return false;
          }
        };
        const [wasmValid, wasmInvalid] = await Promise.all([validateSoapBody(valid), validateSoapBody(invalid)]);
        expect([native(valid), native(invalid)]).toEqual([true, false]);
        expect([wasmValid.valid, wasmInvalid.valid]).toEqual([true, false]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
