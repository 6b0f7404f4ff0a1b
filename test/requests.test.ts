import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type EventType, type FolderSpec } from '../lib/index.js';
import {
  EXCHANGE_VERSIONS,
  SOAP_ACTIONS,
  buildGetEventsRequest,
  buildGetStreamingEventsRequest,
  buildPullSubscribeRequest,
  buildPushSubscribeRequest,
  buildStreamingSubscribeRequest,
  buildSyncFolderItemsRequest,
  buildUnsubscribeRequest,
  type ImpersonationTarget,
} from '../lib/wire.js';
import { escapeAttribute, escapeText } from '../lib/ews/xml.js';
import { EWS_NS, SHARED_DIR, schemaAvailable, schemaSkipReason, validateSoapBody } from './helpers/schema.js';
import { childNames, find, findAll, parseXmlTree, type XmlNode } from './helpers/xml-tree.js';
import { thrown } from './helpers/parser-fixtures.js';

const HOSTILE = `a<b&c>"d'e]]>f\tg\nh\ri &amp; 😀`;

const FOLDER_VARIANTS: readonly (readonly FolderSpec[])[] = [
  ['inbox'],
  [{ id: 'AAMkAGI2TG93AAA=' }],
  [{ id: 'AAMkAGI2TG93AAA=', changeKey: 'AQAAABYAAAA' }],
  [{ distinguishedId: 'inbox', mailbox: 'alice@contoso.com' }],
  ['inbox', 'calendar', { id: 'F1', changeKey: 'CK1' }, { distinguishedId: 'sentitems', mailbox: 'bob@contoso.com' }],
];

const IMPERSONATIONS: readonly ImpersonationTarget[] = [
  { smtpAddress: 'sadie@contoso.com' },
  { primarySmtpAddress: 'sadie@contoso.com' },
  { principalName: 'sadie@corp.contoso.com' },
  { sid: 'S-1-5-21-1-2-3-1001' },
];

/** Every builder × a spread of option combinations: [label, envelope]. */
function allEnvelopes(): [string, string][] {
  const out: [string, string][] = [];
  const add = (label: string, build: () => string): void => {
    out.push([label, build()]);
  };
  FOLDER_VARIANTS.forEach((folders, i) => {
    add(`streaming folders#${i}`, () => buildStreamingSubscribeRequest({ folders }));
    add(`pull folders#${i}`, () => buildPullSubscribeRequest({ folders, timeoutMinutes: 10 }));
    add(`push folders#${i}`, () => buildPushSubscribeRequest({ folders, url: 'https://listener.example/ews' }));
    add(`sync folder#${i}`, () => buildSyncFolderItemsRequest({ folder: folders[0]! }));
  });
  for (const type of EVENT_TYPES) {
    add(`streaming ${type}`, () => buildStreamingSubscribeRequest({ folders: ['inbox'], eventTypes: [type] }));
    add(`pull ${type}`, () => buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: [type], timeoutMinutes: 1 }));
    add(`push ${type}`, () => buildPushSubscribeRequest({ folders: ['inbox'], eventTypes: [type], url: 'http://127.0.0.1:8080/' }));
  }
  add('streaming all folders', () => buildStreamingSubscribeRequest({ subscribeToAllFolders: true }));
  add('pull all folders + watermark', () =>
    buildPullSubscribeRequest({ subscribeToAllFolders: true, watermark: 'AQAAAOpvG0LURVdOhQkPOWZLPcI8EgAAAAAAAAE=', timeoutMinutes: 1440 }),
  );
  add('push all folders + watermark', () =>
    buildPushSubscribeRequest({ subscribeToAllFolders: true, watermark: 'AQAAAA==', statusFrequencyMinutes: 1440, url: 'http://h/x?a=1&b=2' }),
  );
  add('push frequency 1', () => buildPushSubscribeRequest({ folders: ['inbox'], statusFrequencyMinutes: 1, url: 'http://h/' }));
  IMPERSONATIONS.forEach((impersonation, i) => {
    add(`streaming impersonation#${i}`, () => buildStreamingSubscribeRequest({ folders: ['inbox'], impersonation }));
    add(`gse impersonation#${i}`, () => buildGetStreamingEventsRequest({ subscriptionIds: ['s1'], impersonation }));
  });
  for (const requestServerVersion of EXCHANGE_VERSIONS) {
    add(`getevents ${requestServerVersion}`, () => buildGetEventsRequest({ subscriptionId: 's', watermark: 'w', requestServerVersion }));
  }
  add('gse 1 id timeout 1', () => buildGetStreamingEventsRequest({ subscriptionIds: ['s1'], connectionTimeoutMinutes: 1 }));
  add('gse 200 ids', () => buildGetStreamingEventsRequest({ subscriptionIds: Array.from({ length: 200 }, (_, i) => `sub-${i}`) }));
  add('unsubscribe', () => buildUnsubscribeRequest({ subscriptionId: 'f6bc657d-dde1-4f94-952d-143b95d6483d' }));
  add('sync with state, max 1', () => buildSyncFolderItemsRequest({ folder: 'inbox', syncState: 'H4sIAAA==', maxChangesReturned: 1 }));
  add('sync max 512', () => buildSyncFolderItemsRequest({ folder: { id: 'F', changeKey: 'C' }, maxChangesReturned: 512 }));
  add('sync with ParentFolderId (gap recovery)', () => buildSyncFolderItemsRequest({ folder: 'inbox', syncState: 'H4sIAAA==', withParentFolderId: true, impersonation: { smtpAddress: 'a@b.c' } }));
  // Hostile text in every slot that takes free text.
  add('hostile everywhere (streaming)', () =>
    buildStreamingSubscribeRequest({
      folders: [{ id: HOSTILE, changeKey: HOSTILE }, { distinguishedId: 'inbox', mailbox: HOSTILE }],
      impersonation: { smtpAddress: HOSTILE },
    }),
  );
  add('hostile pull watermark', () => buildPullSubscribeRequest({ folders: ['inbox'], watermark: HOSTILE, timeoutMinutes: 5 }));
  add('hostile push url', () => buildPushSubscribeRequest({ folders: ['inbox'], watermark: HOSTILE, url: `http://h/?q=${HOSTILE}` }));
  add('hostile gse', () => buildGetStreamingEventsRequest({ subscriptionIds: [HOSTILE, `${HOSTILE}2`] }));
  add('hostile getevents', () => buildGetEventsRequest({ subscriptionId: HOSTILE, watermark: HOSTILE }));
  add('hostile unsubscribe', () => buildUnsubscribeRequest({ subscriptionId: HOSTILE }));
  add('hostile sync', () => buildSyncFolderItemsRequest({ folder: { id: HOSTILE }, syncState: HOSTILE }));
  return out;
}

describe.skipIf(!schemaAvailable)(`request builders against the EWS schema${schemaAvailable ? '' : ` — ${schemaSkipReason}`}`, () => {
  it('every builder and option combination produces schema-valid Body and Header elements', async () => {
    const envelopes = allEnvelopes();
    expect(envelopes.length).toBeGreaterThan(60);
    // One Promise.all: the helper batches these into one xmllint run.
    const results = await Promise.all(envelopes.map(([, xml]) => validateSoapBody(xml)));
    const failures = results.flatMap((r, i) => (r.valid ? [] : [`${envelopes[i]![0]}: ${r.errors.join('; ')}`]));
    expect(failures).toEqual([]);
    // Body + RequestServerVersion always; + ExchangeImpersonation when asked.
    for (const r of results) expect(r.parts).toBeGreaterThanOrEqual(2);
    const impersonated = results.filter((_, i) => envelopes[i]![0].includes('impersonation'));
    for (const r of impersonated) expect(r.parts).toBe(3);
  });

  it('negative control: the validator rejects bodies the schema forbids', async () => {
    const good = buildPullSubscribeRequest({ folders: ['inbox'], watermark: 'W', timeoutMinutes: 5 });
    const cases: [string, string][] = [
      // Element order: Timeout before Watermark.
      ['order', good.replace('<t:Watermark>W</t:Watermark><t:Timeout>5</t:Timeout>', '<t:Timeout>5</t:Timeout><t:Watermark>W</t:Watermark>')],
      ['range', good.replace('<t:Timeout>5</t:Timeout>', '<t:Timeout>1441</t:Timeout>')],
      ['enum', good.replace('NewMailEvent', 'StatusEvent')],
      ['folder name', good.replace('Id="inbox"', 'Id="Inbox"')],
      ['header version', good.replace('Version="Exchange2013"', 'Version="Exchange2099"')],
      ['streaming watermark', buildStreamingSubscribeRequest({ folders: ['inbox'] }).replace('</t:EventTypes>', '</t:EventTypes><t:Watermark>W</t:Watermark>')],
      ['gse 0 timeout', buildGetStreamingEventsRequest({ subscriptionIds: ['a'] }).replace('>30<', '>0<')],
    ];
    const results = await Promise.all(cases.map(([, xml]) => validateSoapBody(xml)));
    results.forEach((r, i) => {
      expect(r.valid, cases[i]![0]).toBe(false);
      expect(r.errors.length, cases[i]![0]).toBeGreaterThan(0);
    });
    expect(results[4]!.errors.join()).toMatch(/RequestServerVersion/);
    // The header is skipped on request, so only the body decides.
    expect((await validateSoapBody(cases[4]![1], { header: false })).valid).toBe(true);
  });

});

const SAMPLES_DIR = join(SHARED_DIR, 'ews-samples');
const samplesAvailable = existsSync(SAMPLES_DIR);

interface Norm {
  readonly uri: string;
  readonly local: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly text: string;
  readonly children: readonly Norm[];
}
/** Prefix- and indentation-independent view of an element. */
const norm = (n: XmlNode, drop: readonly string[] = []): Norm => ({
  uri: n.uri,
  local: n.local,
  attrs: n.attrs,
  text: n.text.trim(),
  children: n.children.filter((c) => !drop.includes(c.local)).map((c) => norm(c, drop)),
});
const soapChild = (xml: string, local: 'Header' | 'Body'): XmlNode | undefined => parseXmlTree(xml).children.find((c) => c.local === local);

describe.skipIf(!samplesAvailable)(
  `builders reproduce Microsoft's documented requests${samplesAvailable ? '' : ` — ${SAMPLES_DIR} not found (engineering-only); skipped`}`,
  () => {
    const ALL_DOC_ORDER = ['NewMail', 'Created', 'Deleted', 'Modified', 'Moved', 'Copied', 'FreeBusyChanged'] as const;
    // [sample file, our envelope, compare the header too?, elements to ignore in the sample]
    const cases: [string, string, boolean, string[]][] = [
      ['getevents-request-1.xml', buildGetEventsRequest({ subscriptionId: 'd581ab79-a2ec-4653-9c8e-564d7cfc1d8c', watermark: 'AAAAAGUhAAAAAAAAAQ==', requestServerVersion: 'Exchange2016' }), true, []],
      ['getevents-request-2.xml', buildGetEventsRequest({ subscriptionId: 'f6bc657d-dde1-4f94-952d-143b95d6483d', watermark: 'AAAAAMAGAAAAAAAAAQ==' }), false, []],
      ['getstreamingevents-request-1.xml', buildGetStreamingEventsRequest({ subscriptionIds: ['JgBibjFwcjAzbWIyMDIubmFtcHJkMDMucHJvZC5vdXRsb29rLmNvbRAAAADwXxVesOnHS5BxUHKwAW88SHjwd1iB0Ag='], connectionTimeoutMinutes: 30 }), true, []],
      [
        'getstreamingevents-affinity-request-1.xml',
        buildGetStreamingEventsRequest({
          subscriptionIds: [
            'JgBjbzFwcjA2bWIyMjIubmFtcHJkMDYucHJvZC5vdXRsb29rLmNvbRAAAAB4EQOy2pfrQJfM3hzs/nZJIZssan6H0Ag=',
            'JgBjbzFwcjA2bWIyMjIubmFtcHJkMDYucHJvZC5vdXRsb29rLmNvbRAAAAAUeGk+7JFdSaFM8/NI/gQQpVdgZX6H0Ag=',
          ],
          connectionTimeoutMinutes: 10,
          impersonation: { smtpAddress: 'sadie@contoso.com' },
        }),
        true,
        [],
      ],
      // getstreamingevents-request-2.xml is left out: its SubscriptionId elements sit in the
      // messages namespace (a documentation error; the schema wants t:SubscriptionId).
      ['subscribe-pull-request-1.xml', buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['Copied', 'Created', 'Deleted', 'Modified', 'Moved', 'NewMail'], timeoutMinutes: 5, requestServerVersion: 'Exchange2016' }), true, []],
      ['subscribe-pull-request-2.xml', buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail', 'Deleted'], timeoutMinutes: 10 }), false, []],
      ['subscribe-streaming-request-1.xml', buildStreamingSubscribeRequest({ folders: ['inbox'], eventTypes: ALL_DOC_ORDER }), true, []],
      ['subscribe-streaming-affinity-request-1.xml', buildStreamingSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], impersonation: { smtpAddress: 'alfred@contoso.com' } }), true, []],
      ['subscribe-streaming-affinity-request-2.xml', buildStreamingSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], impersonation: { smtpAddress: 'sadie@contoso.com ' } }), true, []],
      // SyncScope NormalItems is the server default; the builder does not write it.
      ['syncfolderitems-request-2.xml', buildSyncFolderItemsRequest({ folder: 'inbox', maxChangesReturned: 10 }), true, ['SyncScope']],
      ['unsubscribe-request-1.xml', buildUnsubscribeRequest({ subscriptionId: 'e6fbf5c1-7e26-4bc6-a5f2-882063d5e34e' }), false, []],
    ];
    it.each(cases)('%s', (file, ours, withHeader, ignore) => {
      const sample = readFileSync(join(SAMPLES_DIR, file), 'utf8');
      expect(norm(soapChild(ours, 'Body')!.children[0]!)).toEqual(norm(soapChild(sample, 'Body')!.children[0]!, ignore));
      // Children only: several samples put Header itself in a docs-site https:// SOAP namespace.
      if (withHeader) expect(soapChild(ours, 'Header')!.children.map((c) => norm(c))).toEqual(soapChild(sample, 'Header')!.children.map((c) => norm(c)));
    });

    it('subscribe-push-request-1.xml (from PushSubscriptionRequest down: its Subscribe lacks the namespace)', () => {
      const sample = find(parseXmlTree(readFileSync(join(SAMPLES_DIR, 'subscribe-push-request-1.xml'), 'utf8')), 'PushSubscriptionRequest');
      const ours = buildPushSubscribeRequest({
        folders: ['inbox'],
        eventTypes: ['NewMail', 'Copied', 'Created', 'Deleted', 'Modified', 'Moved'],
        statusFrequencyMinutes: 1,
        url: 'http://clientWebService/Service.asmx',
      });
      expect(norm(find(parseXmlTree(ours), 'PushSubscriptionRequest'))).toEqual(norm(sample));
    });
  },
);

describe('request envelopes: structure', () => {
  it('declares soap/m/t, puts RequestServerVersion (default Exchange2013) first in the header', () => {
    const root = parseXmlTree(buildUnsubscribeRequest({ subscriptionId: 's' }));
    expect([root.uri, root.local]).toEqual([EWS_NS.soap, 'Envelope']);
    expect(childNames(root)).toEqual(['Header', 'Body']);
    const header = root.children[0]!;
    expect(childNames(header)).toEqual(['RequestServerVersion']);
    expect(header.children[0]!.attrs).toEqual({ Version: 'Exchange2013' });
    expect(header.children[0]!.uri).toBe(EWS_NS.t);
    const body = root.children[1]!;
    expect([body.children[0]!.uri, body.children[0]!.local]).toEqual([EWS_NS.m, 'Unsubscribe']);
  });

  it('writes each impersonation kind as ExchangeImpersonation/ConnectingSID/<kind>', () => {
    const expected = ['SmtpAddress', 'PrimarySmtpAddress', 'PrincipalName', 'SID'];
    IMPERSONATIONS.forEach((impersonation, i) => {
      const header = parseXmlTree(buildUnsubscribeRequest({ subscriptionId: 's', impersonation })).children[0]!;
      expect(childNames(header)).toEqual(['RequestServerVersion', 'ExchangeImpersonation']);
      const sid = find(header, 'ConnectingSID');
      expect(childNames(sid)).toEqual([expected[i]]);
      expect(sid.children[0]!.text).toBe(Object.values(impersonation)[0]);
    });
  });

  it('streaming: FolderIds then EventTypes, no Watermark/Timeout; SubscribeToAllFolders is an attribute', () => {
    const req = find(parseXmlTree(buildStreamingSubscribeRequest({ folders: ['inbox'] })), 'StreamingSubscriptionRequest');
    expect(childNames(req)).toEqual(['FolderIds', 'EventTypes']);
    expect(req.attrs).toEqual({});
    expect(findAll(req, 'EventType').map((e) => e.text)).toEqual(EVENT_TYPES.map((t) => `${t}Event`));
    const all = find(parseXmlTree(buildStreamingSubscribeRequest({ subscribeToAllFolders: true, folders: [] })), 'StreamingSubscriptionRequest');
    expect(all.attrs).toEqual({ SubscribeToAllFolders: 'true' });
    expect(childNames(all)).toEqual(['EventTypes']);
  });

  it('pull: FolderIds, EventTypes, Watermark, Timeout in that order', () => {
    const req = find(
      parseXmlTree(buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail', 'Deleted', 'NewMail'], watermark: 'W', timeoutMinutes: 7 })),
      'PullSubscriptionRequest',
    );
    expect(childNames(req)).toEqual(['FolderIds', 'EventTypes', 'Watermark', 'Timeout']);
    expect(findAll(req, 'EventType').map((e) => e.text)).toEqual(['NewMailEvent', 'DeletedEvent']);
    expect(find(req, 'Timeout').text).toBe('7');
    const noWatermark = find(parseXmlTree(buildPullSubscribeRequest({ folders: ['inbox'], timeoutMinutes: 7 })), 'PullSubscriptionRequest');
    expect(childNames(noWatermark)).toEqual(['FolderIds', 'EventTypes', 'Timeout']);
  });

  it('push: FolderIds, EventTypes, Watermark, StatusFrequency (default 30), URL', () => {
    const req = find(
      parseXmlTree(buildPushSubscribeRequest({ folders: ['inbox'], watermark: 'W', url: 'http://h/a?b=1&c=2' })),
      'PushSubscriptionRequest',
    );
    expect(childNames(req)).toEqual(['FolderIds', 'EventTypes', 'Watermark', 'StatusFrequency', 'URL']);
    expect(find(req, 'StatusFrequency').text).toBe('30');
    expect(find(req, 'URL').text).toBe('http://h/a?b=1&c=2');
  });

  it('folders: distinguished, distinguished with mailbox, explicit id with and without change key', () => {
    const ids = find(parseXmlTree(buildStreamingSubscribeRequest({ folders: FOLDER_VARIANTS[4]! })), 'FolderIds');
    expect(childNames(ids)).toEqual(['DistinguishedFolderId', 'DistinguishedFolderId', 'FolderId', 'DistinguishedFolderId']);
    expect(ids.children.map((c) => c.attrs)).toEqual([{ Id: 'inbox' }, { Id: 'calendar' }, { Id: 'F1', ChangeKey: 'CK1' }, { Id: 'sentitems' }]);
    const mailbox = ids.children[3]!;
    expect(childNames(mailbox)).toEqual(['Mailbox']);
    expect(find(mailbox, 'EmailAddress').text).toBe('bob@contoso.com');
    const plain = find(parseXmlTree(buildStreamingSubscribeRequest({ folders: [{ id: 'X' }] })), 'FolderId');
    expect(plain.attrs).toEqual({ Id: 'X' });
  });

  it('GetStreamingEvents: SubscriptionIds (t:) then ConnectionTimeout (default 30)', () => {
    const op = find(parseXmlTree(buildGetStreamingEventsRequest({ subscriptionIds: ['a', 'b'] })), 'GetStreamingEvents');
    expect(childNames(op)).toEqual(['SubscriptionIds', 'ConnectionTimeout']);
    expect(findAll(op, 'SubscriptionId').map((s) => [s.uri, s.text])).toEqual([
      [EWS_NS.t, 'a'],
      [EWS_NS.t, 'b'],
    ]);
    expect(find(op, 'ConnectionTimeout').text).toBe('30');
  });

  it('GetEvents, Unsubscribe and SyncFolderItems children in schema order', () => {
    const ge = find(parseXmlTree(buildGetEventsRequest({ subscriptionId: 's', watermark: 'w' })), 'GetEvents');
    expect(childNames(ge)).toEqual(['SubscriptionId', 'Watermark']);
    expect(ge.children.map((c) => c.uri)).toEqual([EWS_NS.m, EWS_NS.m]);
    const sync = find(parseXmlTree(buildSyncFolderItemsRequest({ folder: 'inbox', syncState: 'S' })), 'SyncFolderItems');
    expect(childNames(sync)).toEqual(['ItemShape', 'SyncFolderId', 'SyncState', 'MaxChangesReturned']);
    expect(find(sync, 'BaseShape').text).toBe('IdOnly');
    expect(find(sync, 'MaxChangesReturned').text).toBe('512');
    const first = find(parseXmlTree(buildSyncFolderItemsRequest({ folder: 'inbox' })), 'SyncFolderItems');
    expect(childNames(first)).toEqual(['ItemShape', 'SyncFolderId', 'MaxChangesReturned']);
  });

  it('hostile text reads back exactly (text and attributes)', () => {
    const tree = parseXmlTree(
      buildStreamingSubscribeRequest({ folders: [{ id: HOSTILE, changeKey: HOSTILE }], impersonation: { smtpAddress: HOSTILE } }),
    );
    expect(find(tree, 'FolderId').attrs).toEqual({ Id: HOSTILE, ChangeKey: HOSTILE });
    expect(find(tree, 'SmtpAddress').text).toBe(HOSTILE);
    const xml = buildGetEventsRequest({ subscriptionId: HOSTILE, watermark: ']]>' });
    expect(xml).not.toContain(']]>');
    expect(find(parseXmlTree(xml), 'Watermark').text).toBe(']]>');
    expect(find(parseXmlTree(xml), 'SubscriptionId').text).toBe(HOSTILE);
  });

  it('SOAP_ACTIONS are the messages-namespace action URIs', () => {
    expect(SOAP_ACTIONS.Subscribe).toBe('http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe');
    for (const [op, action] of Object.entries(SOAP_ACTIONS)) expect(action).toBe(`${EWS_NS.m}/${op}`);
    expect(Object.keys(SOAP_ACTIONS).sort()).toEqual(
      ['GetEvents', 'GetStreamingEvents', 'SendNotification', 'Subscribe', 'SyncFolderItems', 'Unsubscribe'],
    );
  });
});

describe('XML escaping', () => {
  it('escapes markup and keeps TAB/LF/CR through attribute normalisation', () => {
    expect(escapeText('a<b>&c]]>"\'')).toBe('a&lt;b&gt;&amp;c]]&gt;"\'');
    expect(escapeText('x\r\ny')).toBe('x&#xD;\ny');
    expect(escapeAttribute('a"b\'c\td\ne\rf<&>')).toBe('a&quot;b&apos;c&#x9;d&#xA;e&#xD;f&lt;&amp;&gt;');
    expect(escapeText('plain')).toBe('plain');
    expect(escapeText('😀 \uE000 \uFFFD')).toBe('😀 \uE000 \uFFFD');
  });

  it('rejects characters XML 1.0 cannot carry, naming the field and the code point', () => {
    for (const bad of ['\u0000', '\u0001', '\u001F', '\uFFFE', '\uFFFF', '\uD800', 'a\uDC00b']) {
      expect(() => escapeText(`ok${bad}`, 'watermark')).toThrow(RangeError);
      expect(() => escapeAttribute(bad, 'folders[0].id')).toThrow(/folders\[0\]\.id contains a character not allowed in XML 1\.0/);
    }
    expect(() => escapeText('ab\u0007', 'x')).toThrow(/U\+0007 at index 2/);
    expect(() => buildGetEventsRequest({ subscriptionId: 's', watermark: 'w\u0000' })).toThrow(/^watermark contains/);
    expect(() => buildStreamingSubscribeRequest({ folders: ['inbox'], impersonation: { smtpAddress: 'a\u0002' } })).toThrow(
      /impersonation\.smtpAddress contains/,
    );
  });
});

describe('argument validation names the option', () => {
  const base = { folders: ['inbox'] as const };
  const cases: [string, () => unknown, RegExp, ErrorConstructor][] = [
    ['connectionTimeoutMinutes 0', () => buildGetStreamingEventsRequest({ subscriptionIds: ['a'], connectionTimeoutMinutes: 0 }), /^connectionTimeoutMinutes must be 1–30 \(got 0\)$/, RangeError],
    ['connectionTimeoutMinutes 31', () => buildGetStreamingEventsRequest({ subscriptionIds: ['a'], connectionTimeoutMinutes: 31 }), /^connectionTimeoutMinutes must be 1–30/, RangeError],
    ['connectionTimeoutMinutes 2.5', () => buildGetStreamingEventsRequest({ subscriptionIds: ['a'], connectionTimeoutMinutes: 2.5 }), /^connectionTimeoutMinutes must be 1–30/, RangeError],
    ['subscriptionIds empty', () => buildGetStreamingEventsRequest({ subscriptionIds: [] }), /^subscriptionIds must hold 1–200 ids \(got 0\)/, RangeError],
    ['subscriptionIds 201', () => buildGetStreamingEventsRequest({ subscriptionIds: Array.from({ length: 201 }, (_, i) => `${i}`) }), /^subscriptionIds must hold 1–200/, RangeError],
    ['subscriptionIds not array', () => buildGetStreamingEventsRequest({ subscriptionIds: 'abc' as never }), /^subscriptionIds must be an array/, TypeError],
    ['subscriptionIds[1] empty', () => buildGetStreamingEventsRequest({ subscriptionIds: ['a', ''] }), /^subscriptionIds\[1\] must not be empty/, RangeError],
    ['subscriptionIds[1] duplicate', () => buildGetStreamingEventsRequest({ subscriptionIds: ['a', 'a'] }), /^subscriptionIds\[1\] repeats/, RangeError],
    ['timeoutMinutes missing', () => buildPullSubscribeRequest({ ...base } as never), /^timeoutMinutes must be 1–1440 \(got undefined\)/, RangeError],
    ['timeoutMinutes 1441', () => buildPullSubscribeRequest({ ...base, timeoutMinutes: 1441 }), /^timeoutMinutes must be 1–1440/, RangeError],
    ['timeoutMinutes string', () => buildPullSubscribeRequest({ ...base, timeoutMinutes: '5' as never }), /^timeoutMinutes must be 1–1440 \(got "5"\)/, RangeError],
    ['pull watermark empty', () => buildPullSubscribeRequest({ ...base, timeoutMinutes: 5, watermark: '' }), /^watermark must not be empty/, RangeError],
    ['statusFrequencyMinutes 0', () => buildPushSubscribeRequest({ ...base, url: 'http://h/', statusFrequencyMinutes: 0 }), /^statusFrequencyMinutes must be 1–1440/, RangeError],
    ['url missing', () => buildPushSubscribeRequest({ ...base } as never), /^url must be a string/, TypeError],
    ['url relative', () => buildPushSubscribeRequest({ ...base, url: '/ews/listener' }), /^url must be an absolute http or https URL \(got a string\)$/, RangeError],
    ['url ftp', () => buildPushSubscribeRequest({ ...base, url: 'ftp://user:secret@h/' }), /^url must be an absolute http or https URL \(got a string\)$/, RangeError],
    ['folders missing', () => buildStreamingSubscribeRequest({}), /^folders must list at least one folder unless subscribeToAllFolders is true/, RangeError],
    ['folders empty', () => buildStreamingSubscribeRequest({ folders: [] }), /^folders must list at least one folder/, RangeError],
    ['folders with all', () => buildStreamingSubscribeRequest({ folders: ['inbox'], subscribeToAllFolders: true }), /^folders must be empty or absent when subscribeToAllFolders is true/, RangeError],
    ['folders not array', () => buildStreamingSubscribeRequest({ folders: 'inbox' as never }), /^folders must be an array/, TypeError],
    ['subscribeToAllFolders string', () => buildStreamingSubscribeRequest({ subscribeToAllFolders: 'yes' as never }), /^subscribeToAllFolders must be a boolean/, TypeError],
    ['folders[0] capitalised', () => buildStreamingSubscribeRequest({ folders: ['Inbox'] }), /^folders\[0\] must be a lower-case distinguished folder name/, RangeError],
    ['folders[1].id empty', () => buildStreamingSubscribeRequest({ folders: ['inbox', { id: '' }] }), /^folders\[1\]\.id must not be empty/, RangeError],
    ['folders[0].changeKey number', () => buildStreamingSubscribeRequest({ folders: [{ id: 'x', changeKey: 5 as never }] }), /^folders\[0\]\.changeKey must be a string/, TypeError],
    ['folders[0].mailbox missing', () => buildStreamingSubscribeRequest({ folders: [{ distinguishedId: 'inbox' } as never] }), /^folders\[0\]\.mailbox must be a string/, TypeError],
    ['folders[0].distinguishedId bad', () => buildStreamingSubscribeRequest({ folders: [{ distinguishedId: 'In box', mailbox: 'a@b' }] }), /^folders\[0\]\.distinguishedId must be a lower-case/, RangeError],
    ['folders[0] null', () => buildStreamingSubscribeRequest({ folders: [null as never] }), /^folders\[0\] must be an object/, TypeError],
    ['eventTypes empty', () => buildStreamingSubscribeRequest({ ...base, eventTypes: [] }), /^eventTypes must not be empty/, RangeError],
    ['eventTypes[1] Status', () => buildStreamingSubscribeRequest({ ...base, eventTypes: ['NewMail', 'Status' as never] }), /^eventTypes\[1\] must be one of Copied, Created/, RangeError],
    ['requestServerVersion', () => buildUnsubscribeRequest({ subscriptionId: 's', requestServerVersion: 'Exchange2007_SP1' as never }), /^requestServerVersion must be one of Exchange2010_SP1/, RangeError],
    ['impersonation two keys', () => buildUnsubscribeRequest({ subscriptionId: 's', impersonation: { smtpAddress: 'a', sid: 'b' } as never }), /^impersonation must have exactly one of smtpAddress, .* \(got smtpAddress, sid\)$/, RangeError],
    ['impersonation unknown key', () => buildUnsubscribeRequest({ subscriptionId: 's', impersonation: { upn: 'a' } as never }), /^impersonation must have exactly one of .* \(got upn\)$/, RangeError],
    ['impersonation.smtpAddress empty', () => buildUnsubscribeRequest({ subscriptionId: 's', impersonation: { smtpAddress: '' } }), /^impersonation\.smtpAddress must not be empty/, RangeError],
    ['getevents subscriptionId', () => buildGetEventsRequest({ watermark: 'w' } as never), /^subscriptionId must be a string/, TypeError],
    ['getevents watermark', () => buildGetEventsRequest({ subscriptionId: 's', watermark: '' }), /^watermark must not be empty/, RangeError],
    ['unsubscribe subscriptionId', () => buildUnsubscribeRequest({ subscriptionId: '' }), /^subscriptionId must not be empty/, RangeError],
    ['sync folder missing', () => buildSyncFolderItemsRequest({} as never), /^folder must be given/, TypeError],
    ['sync folder bad', () => buildSyncFolderItemsRequest({ folder: 'Sent Items' }), /^folder must be a lower-case/, RangeError],
    ['maxChangesReturned 513', () => buildSyncFolderItemsRequest({ folder: 'inbox', maxChangesReturned: 513 }), /^maxChangesReturned must be 1–512 \(got 513\)/, RangeError],
    ['maxChangesReturned 0', () => buildSyncFolderItemsRequest({ folder: 'inbox', maxChangesReturned: 0 }), /^maxChangesReturned must be 1–512/, RangeError],
    ['withParentFolderId string', () => buildSyncFolderItemsRequest({ folder: 'inbox', withParentFolderId: 'yes' as never }), /^withParentFolderId must be a boolean \(got "yes"\)$/, TypeError],
    ['syncState empty', () => buildSyncFolderItemsRequest({ folder: 'inbox', syncState: '' }), /^syncState must not be empty/, RangeError],
    ['options missing', () => buildUnsubscribeRequest(undefined as never), /^options must be an object/, TypeError],
  ];
  it.each(cases)('%s', (_label, call, message, type) => {
    const error = thrown(call);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
  });

  it('never echoes a URL (it may carry credentials)', () => {
    expect(() => buildPushSubscribeRequest({ ...base, url: 'ftp://user:secret@h/' })).toThrow(/^(?!.*secret)/);
  });
});

describe('subscription scope written once per scope', () => {
  it('gives the same request for the same scope, and sees a scope changed in place', () => {
    const folders: string[] = ['inbox'];
    const eventTypes: EventType[] = ['NewMail', 'Created'];
    const first = buildStreamingSubscribeRequest({ folders, eventTypes, impersonation: { smtpAddress: 'a@contoso.com' } });
    expect(buildStreamingSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail', 'Created'], impersonation: { smtpAddress: 'a@contoso.com' } })).toBe(first);
    folders.push('calendar');
    eventTypes[1] = 'Deleted';
    const changed = buildStreamingSubscribeRequest({ folders, eventTypes, impersonation: { smtpAddress: 'a@contoso.com' } });
    expect(changed).toContain('<t:DistinguishedFolderId Id="calendar"/>');
    expect(changed).toContain('<t:EventType>DeletedEvent</t:EventType>');
    expect(changed).not.toContain('CreatedEvent');
    // Invalid after valid still throws, with the builder's message.
    expect(() => buildStreamingSubscribeRequest({ folders: ['Inbox'], eventTypes })).toThrow(/lower-case distinguished folder name/);
    expect(() => buildStreamingSubscribeRequest({ folders, eventTypes: ['NewMail', 'Bogus' as EventType] })).toThrow(/eventTypes\[1\]/);
    expect(() => buildStreamingSubscribeRequest({ folders, eventTypes, subscribeToAllFolders: true })).toThrow(/folders must be empty/);
    expect(buildStreamingSubscribeRequest({ subscribeToAllFolders: true, eventTypes })).toContain('SubscribeToAllFolders="true"');
    // Folder objects are written each time (they could change without the array changing).
    const byId = { id: 'AAMk1' };
    buildStreamingSubscribeRequest({ folders: [byId], eventTypes });
    byId.id = 'AAMk2';
    expect(buildStreamingSubscribeRequest({ folders: [byId], eventTypes })).toContain('Id="AAMk2"');
  });
});
