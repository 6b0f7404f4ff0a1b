/**
 * The parser's fast path (parser.ts, `feedFast`) against saxes alone: for every input and every
 * chunking, the same envelopes, or the same error (class and message, saxes's line:column
 * included), in the same write() call. And it must stay on for what EWS streams hold, so the
 * other parser tests exercise it too.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { EnvelopeParser, setParserFastPath, type EnvelopeParserOptions } from '../lib/ews/parser.js';
import { chunksOf, streamingResponseEnvelopes, streamingResponseText } from '../bench/stream-fixture.js';
import { FIXTURE_NAMES, fixture } from './helpers/parser-fixtures.js';

afterEach(() => setParserFastPath(true));

interface Outcome {
  /** Per write() (and the final end()), the envelopes it returned, as JSON. */
  readonly calls: string[];
  readonly error: string | undefined;
  /** The fast path was still on at the end. */
  readonly fast: boolean;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return `non-error ${String(err)}`;
  const cause = err.cause instanceof Error ? ` | cause: ${err.cause.message}` : '';
  return `${err.constructor.name}: ${err.message}${cause}`;
}

function isFast(parser: EnvelopeParser): boolean {
  return (parser as unknown as { fast: boolean }).fast;
}

function run(bytes: Uint8Array, cuts: readonly number[], fast: boolean, options?: EnvelopeParserOptions): Outcome {
  setParserFastPath(fast);
  const parser = new EnvelopeParser(options);
  setParserFastPath(true);
  const calls: string[] = [];
  let from = 0;
  let stillFast = true;
  try {
    for (const cut of [...cuts, bytes.length]) {
      if (cut < from) continue;
      calls.push(JSON.stringify(parser.write(bytes.subarray(from, cut))));
      from = cut;
    }
    stillFast = isFast(parser);
    calls.push(JSON.stringify(parser.end()));
  } catch (err) {
    return { calls, error: describeError(err), fast: isFast(parser) };
  }
  return { calls, error: undefined, fast: stillFast };
}

/**
 * Runs both ways and expects the same outcome; returns the fast one. Without an error, every
 * write() returns the same envelopes. With one, the same envelopes come out before the same error;
 * the fast path reads a start tag once it has all of it, so an error inside a tag may surface a
 * few bytes later than saxes finds it (never earlier, never after the tag's end).
 */
function same(bytes: Uint8Array, cuts: readonly number[] = [], options?: EnvelopeParserOptions): Outcome {
  const slow = run(bytes, cuts, false, options);
  const fast = run(bytes, cuts, true, options);
  if (slow.error === undefined) {
    expect({ calls: fast.calls, error: fast.error }).toStrictEqual({ calls: slow.calls, error: slow.error });
  } else {
    const envelopes = (o: Outcome): unknown[] => o.calls.flatMap((c) => JSON.parse(c) as unknown[]);
    expect({ envelopes: envelopes(fast), error: fast.error }).toStrictEqual({ envelopes: envelopes(slow), error: slow.error });
    expect(fast.calls.length).toBeGreaterThanOrEqual(slow.calls.length);
  }
  return fast;
}

function every(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

/** Drops the whitespace between tags and inside start tags, as Exchange writes its streams. */
function compact(xml: string): string {
  return xml.replace(/>\s+</g, '><').replace(/\s+/g, ' ').replace(/ ([/]?>)/g, '$1');
}

const ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

function streamingEnvelope(inner: string, extraAttributes = ''): string {
  return (
    `<s:Envelope xmlns:s="${ENV}"${extraAttributes}><s:Body><m:GetStreamingEventsResponse xmlns:m="${M}" xmlns:t="${T}">` +
    `<m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
    `<m:Notifications><m:Notification><t:SubscriptionId>sub-1</t:SubscriptionId>${inner}</m:Notification></m:Notifications>` +
    `</m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>`
  );
}

function newMail(id: string, extra = ''): string {
  return `<t:NewMailEvent><t:Watermark>w-${id}</t:Watermark><t:TimeStamp>2024-03-05T09:00:00Z</t:TimeStamp><t:ItemId Id="${id}" ChangeKey="ck"${extra}/><t:ParentFolderId Id="inbox"/></t:NewMailEvent>`;
}

describe('fast path', () => {
  it('stays on for the benchmark streams and gives what saxes gives, whatever the chunking', () => {
    for (const perNotification of [1, 50]) {
      const text = Buffer.from(streamingResponseText({ events: 400, eventsPerNotification: perNotification, closed: true }));
      for (const size of [0, 1, 7, 1460, 65536]) {
        const cuts =
          size === 0
            ? (() => {
                const out: number[] = [];
                let at = 0;
                for (const envelope of streamingResponseEnvelopes({ events: 400, eventsPerNotification: perNotification, closed: true })) {
                  at += envelope.length;
                  out.push(at);
                }
                return out;
              })()
            : chunksOf(text, size).map((_, i) => (i + 1) * size);
        const outcome = same(text, cuts);
        expect(outcome.error).toBeUndefined();
        expect(outcome.fast).toBe(true);
      }
    }
  });

  it.each(FIXTURE_NAMES)('%s, as written and compacted: same result at every split', (name) => {
    const written = fixture(name);
    const compacted = Buffer.from(compact(written.toString('utf8')));
    for (const bytes of [written, compacted]) {
      same(bytes, every(bytes.length));
      for (let cut = 1; cut < bytes.length; cut++) same(bytes, [cut]);
    }
    // Compacted, EWS's own fixtures stay on the fast path, but for references and astral characters.
    const outcome = same(compacted);
    if (!/[&\ud800-\udfff]/.test(compacted.toString('utf8'))) expect(outcome.fast).toBe(true);
  });

  it('every fixture back to back, compacted, CRLF between envelopes: random chunkings', () => {
    const stream = Buffer.from(FIXTURE_NAMES.map((name) => compact(fixture(name).toString('utf8'))).join('\r\n'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 300 }), (cuts) => {
        same(stream, [...cuts].sort((a, b) => a - b));
      }),
      { numRuns: 150 },
    );
  });

  it('non-ASCII text and attribute values, cut inside their UTF-8 sequences', () => {
    const body = streamingEnvelope(newMail('idé新\u00a0x', ' Extra="ünï 新"') + `<t:StatusEvent><t:Watermark>wé</t:Watermark></t:StatusEvent>`);
    const bytes = Buffer.from(`${body}\r\n${body}`);
    const outcome = same(bytes, every(bytes.length));
    expect(outcome.error).toBeUndefined();
    expect(outcome.fast).toBe(true);
    // Astral characters (surrogate pairs) go to saxes, with the same result.
    const astral = Buffer.from(streamingEnvelope(newMail('id-😀')));
    expect(same(astral, every(astral.length)).fast).toBe(false);
  });

  it('line breaks: CRLF and LF in text become what saxes makes of them; other CRs go to saxes', () => {
    const inner = newMail('a').replace('<t:Watermark>w-a</t:Watermark>', '<t:Watermark>w\r\n-a\n</t:Watermark>');
    for (const xml of [
      `\r\n${streamingEnvelope(inner)}\r\n\r\n${streamingEnvelope(newMail('b'))}\n`,
      `${streamingEnvelope(newMail('a').replace('w-a', 'w\ra'))}`,
      `${streamingEnvelope(newMail('a'))}\r${streamingEnvelope(newMail('b'))}`,
      `${streamingEnvelope(newMail('a', ' X="a\r\nb"'))}`,
      `${streamingEnvelope(newMail('a', ' X="a\nb"'))}`,
    ]) {
      const bytes = Buffer.from(xml);
      same(bytes, every(bytes.length));
      same(bytes);
    }
  });

  it('saxes-accepted variations read on the fast path', () => {
    const xml = streamingEnvelope(
      `<t:NewMailEvent  ><t:Watermark >w</t:Watermark  ><t:TimeStamp>2024-03-05T09:00:00Z</t:TimeStamp ><t:ItemId   Id='single'  ChangeKey="a>b" /><t:ParentFolderId Id="p"/></t:NewMailEvent>`,
    );
    const bytes = Buffer.from(xml);
    const outcome = same(bytes, every(bytes.length));
    expect(outcome.error).toBeUndefined();
    expect(outcome.fast).toBe(true);
  });

  const event = newMail('x');
  it.each([
    ['mismatched end tag', streamingEnvelope(event.replace('</t:Watermark>', '</t:Watermarx>'))],
    ['end tag of another element, then the right one', streamingEnvelope(event.replace('</t:NewMailEvent>', '</t:Other></t:NewMailEvent>'))],
    ['unquoted attribute', streamingEnvelope(event.replace('Id="x"', 'Id=x'))],
    ['attribute without value', streamingEnvelope(event.replace('Id="x"', 'Id'))],
    ['space around =', streamingEnvelope(event.replace('Id="x"', 'Id = "x"'))],
    ['< in an attribute value', streamingEnvelope(event.replace('Id="x"', 'Id="x<y"'))],
    ['duplicate attribute', streamingEnvelope(event.replace('Id="x"', 'Id="x" Id="y"'))],
    ['no space between attributes', streamingEnvelope(event.replace('Id="x" ChangeKey', 'Id="x"ChangeKey'))],
    ['unbound element prefix', streamingEnvelope(event.replace('t:TimeStamp', 'q:TimeStamp').replace('t:TimeStamp', 'q:TimeStamp'))],
    ['unbound attribute prefix', streamingEnvelope(event.replace('Id="x"', 'Id="x" q:a="1"'))],
    ['undeclaring a prefix', streamingEnvelope(event.replace('Id="x"', 'Id="x" xmlns:q=""'))],
    [']]> in text', streamingEnvelope(event.replace('w-x', 'w]]>x'))],
    ['a control character in text', streamingEnvelope(event.replace('w-x', 'w\u0001x'))],
    ['a control character in an attribute value', streamingEnvelope(event.replace('Id="x"', 'Id="x\u0002"'))],
    ['U+FFFE in text', streamingEnvelope(event.replace('w-x', 'w\ufffex'))],
    ['a lone surrogate', streamingEnvelope(event.replace('w-x', 'w\ud800x'))],
    ['an undefined entity', streamingEnvelope(event.replace('w-x', 'w&nbsp;x'))],
    ['defined entities and character references', streamingEnvelope(event.replace('w-x', 'w&amp;&lt;&#65;&#x42;x'))],
    ['a comment inside', streamingEnvelope(event.replace('<t:TimeStamp>', '<!-- c --><t:TimeStamp>'))],
    ['a malformed comment', streamingEnvelope(event.replace('<t:TimeStamp>', '<!-- c -- d --><t:TimeStamp>'))],
    ['CDATA', streamingEnvelope(event.replace('w-x', '<![CDATA[w<x]]>'))],
    ['a processing instruction', streamingEnvelope(event.replace('<t:TimeStamp>', '<?pi x?><t:TimeStamp>'))],
    ['a DOCTYPE between envelopes', `${streamingEnvelope(event)}<!DOCTYPE x>${streamingEnvelope(event)}`],
    ['an XML declaration inside', streamingEnvelope(event.replace('<t:TimeStamp>', '<?xml version="1.0"?><t:TimeStamp>'))],
    ['declarations between envelopes', `<?xml version="1.0" encoding="utf-8"?>${streamingEnvelope(event)}\r\n<?xml version="1.0"?>${streamingEnvelope(event)}`],
    ['text between envelopes', `${streamingEnvelope(event)} junk ${streamingEnvelope(event)}`],
    ['slash in a start tag', streamingEnvelope(event.replace('<t:TimeStamp>', '<t:TimeStamp/ >'))],
    ['non-ASCII element name', streamingEnvelope(event.replace('<t:TimeStamp>2024-03-05T09:00:00Z</t:TimeStamp>', '<t:Zeitstempél>x</t:Zeitstempél>'))],
    ['a bad name start', streamingEnvelope(event.replace('<t:TimeStamp>', '<1x></1x><t:TimeStamp>'))],
    ['empty end tag', streamingEnvelope(event.replace('</t:Watermark>', '</>'))],
    ['a tab between attributes', streamingEnvelope(event.replace('Id="x" ChangeKey', 'Id="x"\tChangeKey'))],
    ['a line break between attributes', streamingEnvelope(event.replace('Id="x" ChangeKey', 'Id="x"\r\nChangeKey'))],
    ['wrong root', `<Other xmlns="${ENV}"/>`],
    ['an HTML page', '<html><body>Service unavailable</body></html>'],
    ['an envelope without Body', `<s:Envelope xmlns:s="${ENV}"></s:Envelope>`],
    ['an Id-less ItemId', streamingEnvelope(event.replace('Id="x" ', ''))],
    ['truncated inside a tag', streamingEnvelope(event).slice(0, 300)],
    ['truncated inside text', streamingEnvelope(event).slice(0, streamingEnvelope(event).indexOf('w-x') + 1)],
    ['truncated after a CR', `${streamingEnvelope(event)}\r`],
  ])('%s: the same envelopes and error as saxes alone, whatever the chunking', (_name, xml) => {
    const good = streamingEnvelope(newMail('before'));
    for (const text of [xml, `${good}\r\n${good}\r\n${xml}`, `${good}\n${xml}\n${good}`]) {
      const bytes = Buffer.from(text);
      same(bytes);
      same(bytes, every(bytes.length));
      for (let cut = 1; cut < bytes.length; cut += 7) same(bytes, [cut]);
    }
  });

  it('a > in attribute values at chunk edges, many of them, and a tag too long for the fast path', () => {
    const many = Buffer.from(streamingEnvelope(newMail('x', ' X=">a>b>c>d>e>f>g>h>i>j>k>l"')));
    const outcome = same(many, every(many.length));
    expect(outcome.error).toBeUndefined();
    expect(outcome.fast).toBe(true);
    const long = Buffer.from(`${streamingEnvelope(newMail('y'))}\r\n${streamingEnvelope(newMail('x', ` X="${'v'.repeat(5000)}"`))}`);
    const cuts: number[] = [];
    for (let i = 50; i < long.length; i += 50) cuts.push(i);
    same(long);
    expect(same(long, cuts).fast).toBe(false);
  });

  it('errors carry saxes\'s line and column of the whole stream', () => {
    const good = streamingEnvelope(newMail('before'));
    const bad = streamingEnvelope(event.replace('</t:Watermark>', '</t:Watermarx>'));
    const bytes = Buffer.from(`${good}\r\n${good}\n${bad}`);
    const outcome = same(bytes, [100, 2000]);
    expect(outcome.error).toMatch(/cause: 3:\d+: unexpected close tag/);
  });

  it('maxEnvelopeBytes counts the same bytes: at the cap, one byte over, with declarations and non-ASCII', () => {
    const one = `<?xml version="1.0"?>\r\n${streamingEnvelope(newMail('né'))}`;
    const size = Buffer.byteLength(one);
    const many = Buffer.from(one.repeat(5));
    for (const max of [size - 1, size, size + 1]) {
      same(many, [], { maxEnvelopeBytes: max });
      same(many, every(many.length), { maxEnvelopeBytes: max });
      const cuts: number[] = [];
      for (let i = 97; i < many.length; i += 97) cuts.push(i);
      same(many, cuts, { maxEnvelopeBytes: max });
    }
    // The same with a replay: the last envelope goes to saxes after four on the fast path.
    const bad = Buffer.from(one.repeat(4) + one.replace('w-né', 'w&amp;né'));
    for (const max of [size, size + 4, size + 5]) same(bad, every(bad.length), { maxEnvelopeBytes: max });
  });
});
