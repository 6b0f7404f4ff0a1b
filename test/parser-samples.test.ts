/**
 * The parser against real wire samples in ../shared/ews-samples/ (Microsoft's documentation samples
 * and a capture from a real Exchange 2016 server). That directory is not part of the package;
 * without it these tests are skipped.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EwsParseError } from '../lib/entry-errors.js';
import { parseEnvelope, type EwsEnvelope, type GetStreamingEventsMessage, type ResponseMessage } from '../lib/wire.js';
import { parseBytewise, thrown } from './helpers/parser-fixtures.js';

const SAMPLES = fileURLToPath(new URL('../../shared/ews-samples/', import.meta.url));
const present = existsSync(SAMPLES);
if (!present) console.warn(`parser-samples: ${SAMPLES} is absent, skipping the real-sample tests`);

const files = present ? readdirSync(SAMPLES).filter((f) => f.endsWith('.xml')).sort() : [];
const read = (name: string): string => readFileSync(SAMPLES + name, 'utf8');
/** Samples whose comment says they are not well-formed as published. */
const notWellFormed = files.filter((f) => read(f).includes('NOT well-formed'));
/** The docs site rewrote the SOAP namespace to https://; real servers write http://. */
const HTTPS_SOAP = 'https://schemas.xmlsoap.org/soap/envelope/';
const usesHttpsSoap = (f: string): boolean => read(f).includes(`"${HTTPS_SOAP}"`);
const undoHttpsRewrite = (text: string): string => text.replaceAll(HTTPS_SOAP, 'http://schemas.xmlsoap.org/soap/envelope/');

function messages(envelope: EwsEnvelope): readonly ResponseMessage[] {
  expect(envelope.body.type).toBe('response');
  return envelope.body.type === 'response' ? envelope.body.messages : [];
}

/** What each well-formed response sample must parse to (after undoing the https rewrite). */
const EXPECTED: Record<string, (e: EwsEnvelope) => void> = {
  'real-exchange2016-getstreamingevents.xml': (e) => {
    expect(e.serverVersion).toStrictEqual({
      majorVersion: 15,
      minorVersion: 1,
      majorBuildNumber: 1591,
      minorBuildNumber: 10,
      version: 'V2017_07_11',
    });
    const [m] = messages(e);
    expect(m).toMatchObject({ kind: 'GetStreamingEvents', responseClass: 'Success', responseCode: 'NoError' });
    const ns = (m as GetStreamingEventsMessage).notifications;
    expect(ns.map((n) => n.subscriptionId)).toStrictEqual([
      'FwBleGNoMDMuYm9va2luZ2J1Zy5sb2NhbBAAAACRSuDZ7LUVRZRdTUGgj8dRTln61/P61ggQAAAAXGkYiHJpukmWTKXM27pVgQ==',
      'FwBleGNoMDMuYm9va2luZ2J1Zy5sb2NhbBAAAAB9DEFxT0GoT76vzMfF9cAfJeXk1/P61ggQAAAAzx24c/i+nkuy00/tlBOrpQ==',
    ]);
    const pattern = ['Modified', 'FreeBusyChanged', 'Modified', 'FreeBusyChanged', 'Modified', 'FreeBusyChanged', 'Modified'];
    for (const n of ns) {
      expect(n.moreEvents).toBe(false);
      expect(n).not.toHaveProperty('previousWatermark');
      expect(n.events.map((ev) => ev.type)).toStrictEqual(pattern);
      // Streaming events carry no watermark, so none is invented.
      for (const ev of n.events) expect(ev).not.toHaveProperty('watermark');
      // The last event of each notification is the folder's own Modified event.
      expect(n.events[6]).toMatchObject({ type: 'Modified', folderId: { changeKey: 'AgAAAA==' } });
      expect(n.events[6]).not.toHaveProperty('itemId');
    }
    expect(ns[0]?.events[0]).toStrictEqual({
      type: 'Modified',
      timeStamp: '2019-06-27T11:37:36Z',
      itemId: {
        id: 'AAMkADg4MTg2OTVjLTY5NzItNDliYS05NjRjLWE1Y2NkYmJhNTU4MQBGAAAAAAAnT+v/XrekSJPJnfajaVp7BwB4AcCri66ATqtSWLqPBV/jAAAAAAENAAB4AcCri66ATqtSWLqPBV/jAAAMnbCEAAA=',
        changeKey: 'DwAAAA==',
      },
      parentFolderId: {
        id: 'AAMkADg4MTg2OTVjLTY5NzItNDliYS05NjRjLWE1Y2NkYmJhNTU4MQAuAAAAAAAnT+v/XrekSJPJnfajaVp7AQB4AcCri66ATqtSWLqPBV/jAAAAAAENAAA=',
        changeKey: 'AQAAAA==',
      },
    });
  },
  'getevents-response-2.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'GetEvents',
        responseClass: 'Success',
        responseCode: 'NoError',
        notification: {
          subscriptionId: 'f6bc657d-dde1-4f94-952d-143b95d6483d',
          previousWatermark: 'AAAAAMAGAAAAAAAAAQ==',
          moreEvents: false,
          events: [
            {
              type: 'NewMail',
              watermark: 'AAAAAM4GAAAAAAAAAQ==',
              timeStamp: '2006-08-22T00:36:29Z',
              itemId: { id: 'AQApAHR', changeKey: 'CQAAAA==' },
              parentFolderId: { id: 'AQApAH', changeKey: 'AQAAAA==' },
            },
            {
              type: 'NewMail',
              watermark: 'AAAAAOQGAAAAAAAAAQ==',
              timeStamp: '2006-08-22T01:00:50Z',
              itemId: { id: 'AQApAHRw', changeKey: 'CQAAAA==' },
              parentFolderId: { id: 'AQApAH', changeKey: 'AQAAAA==' },
            },
          ],
        },
      },
    ]);
  },
  'getevents-error-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'GetEvents',
        responseClass: 'Error',
        responseCode: 'ErrorSubscriptionAccessDenied',
        messageText: 'Access is denied. Only the subscription owner may access the subscription.',
        descriptiveLinkKey: 0,
      },
    ]);
  },
  'subscribe-pull-response-2.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'Subscribe',
        responseClass: 'Success',
        responseCode: 'NoError',
        subscriptionId: '39ea5d0f-f062-455e-a1e9-89c0304390f4',
        watermark: 'AAAAAHgGAAAAAAAAAQ==',
      },
    ]);
  },
  'subscribe-push-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'Subscribe',
        responseClass: 'Success',
        responseCode: 'NoError',
        subscriptionId: '83826921-afdf-48be-b469-628cc02b5f49',
        watermark: 'AQAAAOpvG0LURVdOhQkPOWZLPcI8EgAAAAAAAAE=',
      },
    ]);
  },
  'subscribe-pull-error-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'Subscribe',
        responseClass: 'Error',
        responseCode: 'ErrorSubscriptionDelegateAccessNotSupported',
        messageText: 'Subscriptions are not supported for delegate user access.',
        descriptiveLinkKey: 0,
      },
    ]);
  },
  'subscribe-streaming-response-1.xml': (e) => {
    expect(e.serverVersion).toMatchObject({ majorVersion: 15, version: 'V2_6' });
    expect(messages(e)).toStrictEqual([
      {
        kind: 'Subscribe',
        responseClass: 'Success',
        responseCode: 'NoError',
        subscriptionId: 'JgBibjFwcjAzbWIyMDIubmFtcHJkMDMucHJvZC5vdXRsb29rLmNvbRAAAADwXxVesOnHS5BxUHKwAW88SHjwd1iB0Ag=',
      },
    ]);
  },
  'subscribe-streaming-affinity-response-1.xml': (e) => {
    expect(messages(e)).toMatchObject([
      { kind: 'Subscribe', subscriptionId: 'JgBjbzFwcjA2bWIyMjIubmFtcHJkMDYucHJvZC5vdXRsb29rLmNvbRAAAAAUeGk+7JFdSaFM8/NI/gQQpVdgZX6H0Ag=' },
    ]);
    expect(messages(e)[0]).not.toHaveProperty('watermark');
  },
  'subscribe-streaming-affinity-response-2.xml': (e) => {
    expect(messages(e)).toMatchObject([
      { kind: 'Subscribe', subscriptionId: 'JgBjbzFwcjA2bWIyMjIubmFtcHJkMDYucHJvZC5vdXRsb29rLmNvbRAAAAB4EQOy2pfrQJfM3hzs/nZJIZssan6H0Ag=' },
    ]);
  },
  'unsubscribe-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([{ kind: 'Unsubscribe', responseClass: 'Success', responseCode: 'NoError' }]);
  },
  'unsubscribe-error-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'Unsubscribe',
        responseClass: 'Error',
        responseCode: 'ErrorSubscriptionNotFound',
        messageText: 'The specified subscription was not found.',
        descriptiveLinkKey: 0,
      },
    ]);
  },
  'syncfolderitems-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'SyncFolderItems',
        responseClass: 'Success',
        responseCode: 'NoError',
        syncState: 'H4sIAAAAA=',
        includesLastItemInRange: true,
        changes: [{ type: 'Create', itemId: { id: 'AQApAHRwA==', changeKey: 'CwAAABYA' }, itemClass: 'MeetingRequest' }],
      },
    ]);
  },
  'syncfolderitems-response-2.xml': (e) => {
    const [m] = messages(e);
    expect(m).toMatchObject({ kind: 'SyncFolderItems', syncState: 'H4sIAAA==', includesLastItemInRange: true });
    expect(m?.kind === 'SyncFolderItems' ? m.changes : []).toStrictEqual([
      { type: 'Create', itemId: { id: 'q04QAAAA==', changeKey: 'CQAAABYAAABhFfgM7MNwSYx0VZ0GoBMJAAAATVdC' }, itemClass: 'Message' },
      { type: 'Create', itemId: { id: 'q07AAAAA==', changeKey: 'CQAAABYAAABhFfgM7MNwSYx0VZ0GoBMJAAAATVdB' }, itemClass: 'Message' },
      { type: 'Create', itemId: { id: 'q1AwAAAA==', changeKey: 'CQAAABYAAABhFfgM7MNwSYx0VZ0GoBMJAAAATVdA' }, itemClass: 'Message' },
      { type: 'Create', itemId: { id: 'AAMkADBh==', changeKey: 'CQAAABYAAABhFfgM7MNwSYx0VZ0GoBMJAAAATVc5' }, itemClass: 'Message' },
      { type: 'Create', itemId: { id: 'AAMkADBh==', changeKey: 'CQAAABYAAABhFfgM7MNwSYx0VZ0GoBMJAAAATVc4' }, itemClass: 'Message' },
    ]);
  },
  'syncfolderitems-response-3.xml': (e) => {
    const [m] = messages(e);
    // Ids are opaque: the sample's leading spaces are kept, not "fixed". The item class is the
    // element a Create/Update carries (ReadFlagChange and Delete carry only an ItemId).
    expect(m?.kind === 'SyncFolderItems' ? m.changes : []).toStrictEqual([
      { type: 'Update', itemId: { id: 'q04QAAAA==', changeKey: 'CQAAABYAAADZGACZQpSgSpyNkexYe2b7AAAAird/' }, itemClass: 'Message', parentFolderId: { id: ' AgENAAAA', changeKey: 'AQAAAA==' } },
      { type: 'Create', itemId: { id: 'AQMkAD+' }, itemClass: 'Message', parentFolderId: { id: 'AQMkA==', changeKey: 'AQAAAA==' } },
      { type: 'Create', itemId: { id: 'Q04AAAAA==', changeKey: 'AAAirbnd' }, itemClass: 'Message', parentFolderId: { id: 'AgENAAAA', changeKey: 'AQAAAA==' } },
      { type: 'ReadFlagChange', itemId: { id: ' q07AAAAA==', changeKey: 'CQAAAA==' }, isRead: true },
      { type: 'Delete', itemId: { id: ' q1AwAAAA==', changeKey: 'CQAAAA==' } },
    ]);
  },
  'syncfolderitems-error-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      {
        kind: 'SyncFolderItems',
        responseClass: 'Error',
        responseCode: 'ErrorInvalidSyncStateData',
        messageText: 'Synchronization state data is corrupt or otherwise invalid.',
        descriptiveLinkKey: 0,
        syncState: '',
        includesLastItemInRange: true,
        changes: [],
      },
    ]);
  },
  'syncfolderhierarchy-response-1.xml': (e) => {
    expect(messages(e)).toStrictEqual([
      { kind: 'Other', elementName: 'SyncFolderHierarchyResponseMessage', responseClass: 'Success', responseCode: 'NoError' },
    ]);
  },
  'syncfolderhierarchy-response-2.xml': (e) => {
    expect(messages(e)).toMatchObject([{ kind: 'Other', elementName: 'SyncFolderHierarchyResponseMessage' }]);
  },
  'syncfolderhierarchy-response-3.xml': (e) => {
    expect(messages(e)).toMatchObject([{ kind: 'Other', elementName: 'SyncFolderHierarchyResponseMessage' }]);
  },
  'syncfolderhierarchy-error-response-1.xml': (e) => {
    expect(messages(e)).toMatchObject([
      { kind: 'Other', responseClass: 'Error', responseCode: 'ErrorInvalidSyncStateData', descriptiveLinkKey: 0 },
    ]);
  },
};

describe.skipIf(!present)('real EWS samples (../shared/ews-samples)', () => {
  it('finds the samples and the four documented as not well-formed', () => {
    expect(files.length).toBeGreaterThan(30);
    expect(notWellFormed).toStrictEqual([
      'getevents-response-1.xml',
      'getstreamingevents-error-response-1.xml',
      'getstreamingevents-response-1.xml',
      'getstreamingevents-response-2.xml',
    ]);
  });

  it.each(Object.keys(EXPECTED))('%s parses to the right shape, whole and byte by byte', (name) => {
    const text = undoHttpsRewrite(read(name));
    const envelope = parseEnvelope(text);
    EXPECTED[name]?.(envelope);
    expect(parseBytewise(Buffer.from(text))).toStrictEqual([envelope]);
  });

  it('every response sample that is well-formed and enveloped has an expectation above', () => {
    const responses = files.filter(
      (f) => (f.includes('response') || f.startsWith('real-')) && !notWellFormed.includes(f),
    );
    const bodyOnly = ['subscribe-pull-response-1.xml'];
    expect(responses.filter((f) => !bodyOnly.includes(f)).sort()).toStrictEqual(Object.keys(EXPECTED).sort());
  });

  it.each(notWellFormed)('%s (not well-formed as published) → EwsParseError, whole and byte by byte', (name) => {
    const bytes = Buffer.from(undoHttpsRewrite(read(name)));
    expect(thrown(() => parseEnvelope(bytes))).toBeInstanceOf(EwsParseError);
    expect(thrown(() => parseBytewise(bytes))).toBeInstanceOf(EwsParseError);
  });

  it('subscribe-pull-response-1.xml (a body fragment without envelope) → EwsParseError', () => {
    const err = thrown(() => parseEnvelope(read('subscribe-pull-response-1.xml')));
    expect(err).toBeInstanceOf(EwsParseError);
    expect((err as Error).message).toMatch(/Expected a SOAP 1.1 Envelope .* found <SubscribeResponse>/);
  });

  it.each(files.filter((f) => usesHttpsSoap(f) && !notWellFormed.includes(f)))(
    '%s as published (https:// SOAP namespace) → EwsParseError naming the namespace',
    (name) => {
      const err = thrown(() => parseEnvelope(read(name)));
      expect(err).toBeInstanceOf(EwsParseError);
      expect((err as Error).message).toContain(HTTPS_SOAP);
    },
  );

  it.each(files.filter((f) => f.includes('request')))('%s (a request, not a response) → EwsParseError', (name) => {
    const err = thrown(() => parseEnvelope(undoHttpsRewrite(read(name))));
    expect(err).toBeInstanceOf(EwsParseError);
  });

  it('the real Exchange 2016 envelope repeated as a stream, cut at every byte, gives the same envelopes', () => {
    const one = Buffer.from(read('real-exchange2016-getstreamingevents.xml'));
    const expected = parseEnvelope(one);
    const stream = Buffer.concat([one, one, one]);
    expect(parseBytewise(stream)).toStrictEqual([expected, expected, expected]);
  });
});
