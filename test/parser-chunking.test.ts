import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeParser, parseEnvelope, type EwsEnvelope } from '../lib/wire.js';
import { FIXTURE_NAMES, fixture, parseBytewise, parseInPieces, parseWhole } from './helpers/parser-fixtures.js';

// Every fixture, then all of them back to back as one stream (each keeps its own XML declaration,
// as envelopes on a GetStreamingEvents connection may).
const stream = Buffer.concat(FIXTURE_NAMES.map((name) => Buffer.concat([fixture(name), Buffer.from('\r\n')])));
const expectedStream: EwsEnvelope[] = FIXTURE_NAMES.map((name) => parseEnvelope(fixture(name)));

describe('chunking never changes the result', () => {
  it('has fixtures to work on', () => {
    expect(FIXTURE_NAMES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(FIXTURE_NAMES)('%s: one byte at a time', (name) => {
    const bytes = fixture(name);
    const whole = parseWhole(bytes);
    expect(whole).toHaveLength(1);
    expect(parseBytewise(bytes)).toStrictEqual(whole);
  });

  it.each(FIXTURE_NAMES)('%s: split in two at every byte', (name) => {
    const bytes = fixture(name);
    const whole = parseWhole(bytes);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const pieces = parseInPieces(bytes, [cut]);
      if (JSON.stringify(pieces) !== JSON.stringify(whole)) {
        // Only build the (slow) diff for the failing split point.
        expect({ cut, pieces }).toStrictEqual({ cut, pieces: whole });
      }
    }
  });

  it('a stream of every fixture back to back: whole, byte by byte, and in 1,460-byte segments', () => {
    expect(parseWhole(stream)).toStrictEqual(expectedStream);
    expect(parseBytewise(stream)).toStrictEqual(expectedStream);
    const cuts: number[] = [];
    for (let i = 1460; i < stream.length; i += 1460) cuts.push(i);
    expect(parseInPieces(stream, cuts)).toStrictEqual(expectedStream);
  });

  it('a stream of every fixture back to back: random chunkings (fast-check)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 400 }), (cuts) => {
        const sorted = [...cuts].sort((a, b) => a - b);
        expect(parseInPieces(stream, sorted)).toStrictEqual(expectedStream);
      }),
      { numRuns: 300 },
    );
  });

  it('two (and more) envelopes in one chunk are all returned, in order', () => {
    const ok = fixture('streaming-connection-ok.xml');
    const closed = fixture('streaming-connection-closed.xml');
    const parser = new EnvelopeParser();
    const out = parser.write(Buffer.concat([ok, closed, ok]));
    expect(out.map((e) => (e.body.type === 'response' ? e.body.messages[0] : undefined))).toMatchObject([
      { connectionStatus: 'OK' },
      { connectionStatus: 'Closed' },
      { connectionStatus: 'OK' },
    ]);
    expect(parser.end()).toEqual([]);
  });

  it('returns each envelope from the very write() that carries its closing tag', () => {
    const parser = new EnvelopeParser();
    const returnedAt: number[] = [];
    for (let i = 0; i < stream.length; i++) {
      for (const _ of parser.write(stream.subarray(i, i + 1))) returnedAt.push(i);
    }
    expect(parser.end()).toEqual([]);
    // The byte index of the `>` ending each `</…Envelope>` in the stream.
    const text = stream.toString('latin1');
    const closers: number[] = [];
    const re = /<\/(?:[\w.-]+:)?Envelope\s*>/g;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) closers.push(m.index + m[0].length - 1);
    expect(returnedAt).toEqual(closers);
  });
});

describe('UTF-8 characters split across chunks', () => {
  const bytes = fixture('streaming-error-subscription-ids.xml');

  it('the fixture has 2-, 3- and 4-byte characters', () => {
    const text = bytes.toString('utf8');
    expect(text).toContain('ü'); // 2 bytes
    expect(text).toContain('新'); // 3 bytes
    expect(text).toContain('😀'); // 4 bytes (a surrogate pair in JavaScript)
  });

  it('cutting inside each byte of every multi-byte character keeps the text intact', () => {
    const whole = parseWhole(bytes);
    let inside = 0;
    for (let i = 1; i < bytes.length; i++) {
      // A continuation byte (10xxxxxx): cutting before it splits a character.
      if (((bytes[i] as number) & 0xc0) !== 0x80) continue;
      inside++;
      expect(parseInPieces(bytes, [i])).toStrictEqual(whole);
      expect(parseInPieces(bytes, [i - 1, i, i + 1])).toStrictEqual(whole);
    }
    expect(inside).toBeGreaterThan(20);
    const [message] = whole[0]?.body.type === 'response' ? whole[0].body.messages : [];
    expect(message?.messageText).toBe('Ein neuer Stream wurde für dieses Abonnement geöffnet — 新しい接続 😀');
  });

  it('a non-ASCII id split inside its character is kept exactly', () => {
    const whole = parseWhole(bytes);
    const at = bytes.indexOf(Buffer.from('ü', 'utf8'));
    expect(at).toBeGreaterThan(0);
    expect(parseInPieces(bytes, [at + 1])).toStrictEqual(whole);
    const message = whole[0]?.body.type === 'response' ? whole[0].body.messages[0] : undefined;
    expect(message).toMatchObject({ errorSubscriptionIds: ['sub-prefixed-1', 'sub-ünïcødé-2'] });
  });
});

describe('all-ASCII chunks decode as TextDecoder would (the parser skips it for them)', () => {
  const messageText = (envelopes: readonly EwsEnvelope[]): string | undefined => {
    const body = envelopes[0]?.body;
    const message = body?.type === 'response' ? body.messages[0] : undefined;
    return message?.messageText;
  };
  const envelopeWith = (text: Buffer): Buffer =>
    Buffer.concat([
      Buffer.from(
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages>' +
          '<m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>',
      ),
      text,
      Buffer.from('</m:MessageText><m:ResponseCode>ErrorInternalServerError</m:ResponseCode></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>'),
    ]);

  it('a byte-order mark after the first bytes is text, not dropped, however the stream is cut', () => {
    const bytes = envelopeWith(Buffer.from('a\uFEFFb', 'utf8'));
    const whole = parseWhole(bytes);
    expect(messageText(whole)).toBe('a\uFEFFb');
    expect(parseBytewise(bytes)).toStrictEqual(whole);
    const at = bytes.indexOf(Buffer.from('\uFEFF', 'utf8'));
    expect(parseInPieces(bytes, [1, at])).toStrictEqual(whole);
    expect(parseInPieces(bytes, [at, at + 3])).toStrictEqual(whole);
  });

  it('a truncated or invalid sequence before an ASCII chunk becomes U+FFFD, as with one write', () => {
    const bytes = envelopeWith(Buffer.from([0x61, 0xe2, 0x82, 0x62, 0xff, 0x63, 0xf0, 0x9f]));
    const whole = parseWhole(bytes);
    expect(messageText(whole)).toBe('a\uFFFDb\uFFFDc\uFFFD');
    expect(parseBytewise(bytes)).toStrictEqual(whole);
    const at = bytes.indexOf(Buffer.from([0xe2]));
    for (let cut = at - 1; cut <= at + 8; cut++) expect(parseInPieces(bytes, [cut])).toStrictEqual(whole);
  });
});
