import { describe, expect, it } from 'vitest';
import { EwsEnvelopeTooLargeError, EwsNotXmlError, EwsParseError, EwsXmlForbiddenError } from '../lib/entry-errors.js';
import { EnvelopeParser, parseEnvelope } from '../lib/wire.js';
import { fixture, parseBytewise, parseInPieces, parseWhole, thrown } from './helpers/parser-fixtures.js';

const SOAP = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';

const okEnvelope = fixture('streaming-connection-ok.xml').toString().trim();

/** A GetStreamingEvents envelope with one Notification whose StatusEvents pad it to about `size` bytes. */
function paddedEnvelope(size: number, subscriptionId = 's1'): string {
  const head =
    `<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetStreamingEventsResponse xmlns:m="${M}" xmlns:t="${T}">` +
    `<m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
    `<m:Notifications><m:Notification><t:SubscriptionId>${subscriptionId}</t:SubscriptionId>`;
  const tail =
    '</m:Notification></m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages>' +
    '</m:GetStreamingEventsResponse></s:Body></s:Envelope>';
  const event = '<t:StatusEvent/>';
  const count = Math.max(1, Math.ceil((size - head.length - tail.length) / event.length));
  return head + event.repeat(count) + tail;
}

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetEventsResponse xmlns:m="${M}"><m:ResponseMessages>
<m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>&lol9;</m:MessageText></m:GetEventsResponseMessage>
</m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>`;

const XXE = `<?xml version="1.0"?>
<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="${SOAP}"><s:Body><m:GetEventsResponse xmlns:m="${M}"><m:ResponseMessages>
<m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>&xxe;</m:MessageText></m:GetEventsResponseMessage>
</m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>`;

describe('DTDs and entities are refused', () => {
  it.each([
    ['billion laughs', BILLION_LAUGHS],
    ['an external entity (XXE)', XXE],
    ['a DOCTYPE without internal subset', `<!DOCTYPE s:Envelope SYSTEM "http://attacker.example/x.dtd">${okEnvelope}`],
  ])('%s → EwsXmlForbiddenError, whole and byte by byte', (_name, body) => {
    const whole = thrown(() => parseEnvelope(body));
    expect(whole).toBeInstanceOf(EwsXmlForbiddenError);
    expect(whole).toMatchObject({ code: 'EWS_XML_FORBIDDEN', retriable: false });
    expect(thrown(() => parseBytewise(Buffer.from(body)))).toBeInstanceOf(EwsXmlForbiddenError);
  });

  it('refuses a DOCTYPE after an envelope as soon as `<!DOCTYPE` is read, before its content', () => {
    const parser = new EnvelopeParser();
    expect(parser.write(Buffer.from(`${okEnvelope}\n`))).toHaveLength(1);
    expect(() => parser.write(Buffer.from('<!DOCTYPE'))).toThrow(EwsXmlForbiddenError);
  });

  it('refuses a DOCTYPE inside an envelope', () => {
    const body = okEnvelope.replace('<soap11:Body', '<!DOCTYPE x><soap11:Body');
    expect(thrown(() => parseEnvelope(body))).toBeInstanceOf(EwsXmlForbiddenError);
  });

  it('never expands an undeclared entity reference: EwsParseError', () => {
    const body = okEnvelope.replace('<m:ResponseCode>NoError', '<m:ResponseCode>&xxe;NoError');
    const err = thrown(() => parseEnvelope(body));
    expect(err).toBeInstanceOf(EwsParseError);
    expect((err as Error).message).toMatch(/undefined entity/);
  });

  it('treats an <!ENTITY …> outside a DOCTYPE as malformed XML', () => {
    const body = okEnvelope.replace('<soap11:Body', '<!ENTITY x "y"><soap11:Body');
    expect(thrown(() => parseEnvelope(body))).toBeInstanceOf(EwsParseError);
  });

  it('still reads the predefined entities and character references', () => {
    const body = okEnvelope.replace(
      '<m:ResponseCode>NoError</m:ResponseCode>',
      '<m:ResponseCode>NoError</m:ResponseCode><m:MessageText>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#233;&#x1F600;</m:MessageText>',
    );
    const parsed = parseEnvelope(body).body;
    const message = parsed.type === 'response' ? parsed.messages[0] : undefined;
    expect(message?.messageText).toBe('a <b> & "c" \'d\' é😀');
  });
});

describe('malformed XML', () => {
  it.each([
    ['a mismatched end tag', okEnvelope.replace('</m:ResponseCode>', '</m:ResponseCodes>')],
    ['an unquoted attribute', okEnvelope.replace('ResponseClass="Success"', 'ResponseClass=Success')],
    ['an unbound prefix', okEnvelope.replace('<m:ResponseCode>', '<q:ResponseCode>').replace('</m:ResponseCode>', '</q:ResponseCode>')],
    ['a malformed character reference', okEnvelope.replace('NoError', 'No&#xZZ;Error')],
    ['a forbidden control character', okEnvelope.replace('NoError', 'No\u0001Error')],
  ])('%s → EwsParseError with the saxes error as cause', (_name, body) => {
    const err = thrown(() => parseEnvelope(body));
    expect(err).toBeInstanceOf(EwsParseError);
    expect(err).toMatchObject({ code: 'EWS_PARSE_ERROR', retriable: true });
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(((err as Error).cause as Error).message);
  });

  it('does not hand out an envelope "closed" by a wrong end tag', () => {
    const bad = okEnvelope.replace('</Envelope>', '</Envelopes>');
    const parser = new EnvelopeParser();
    expect(() => parser.write(Buffer.from(bad))).toThrow(EwsParseError);
    // Byte by byte, the write() carrying the bad `>` must fail, not return the envelope.
    expect(thrown(() => parseBytewise(Buffer.from(bad)))).toBeInstanceOf(EwsParseError);
  });

  it('fails at end() when the input stops inside an envelope or inside markup', () => {
    const bytes = Buffer.from(okEnvelope);
    for (const cut of [1, 20, bytes.length - 1]) {
      const parser = new EnvelopeParser();
      expect(parser.write(bytes.subarray(0, cut))).toEqual([]);
      const err = thrown(() => parser.end());
      expect(err).toBeInstanceOf(EwsParseError);
    }
    const parser = new EnvelopeParser();
    parser.write(Buffer.from(`${okEnvelope}<!-- unterminated`));
    expect(() => parser.end()).toThrow(EwsParseError);
  });

  it('after an error the parser is unusable: every later call throws the same error', () => {
    const parser = new EnvelopeParser();
    const err = thrown(() => parser.write(Buffer.from(okEnvelope.replace('</m:ResponseCode>', '</x>'))));
    expect(parser.error).toBe(err);
    expect(thrown(() => parser.write(Buffer.from(okEnvelope)))).toBe(err);
    expect(thrown(() => parser.end())).toBe(err);
  });

  it('returns the envelopes a chunk completed before its error, then throws on the next call', () => {
    const parser = new EnvelopeParser();
    const out = parser.write(Buffer.from(`${okEnvelope}${okEnvelope}<s:Envelope xmlns:s="${SOAP}"></oops>`));
    expect(out).toHaveLength(2);
    expect(parser.error).toBeInstanceOf(EwsParseError);
    expect(() => parser.end()).toThrow(parser.error);
  });

  it('checks XML declarations between envelopes', () => {
    expect(parseWhole(Buffer.from(`<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>${okEnvelope}`))).toHaveLength(1);
    expect(thrown(() => parseWhole(Buffer.from(`<?xml version="1.0" encoding="iso-8859-1"?>${okEnvelope}`)))).toMatchObject({
      message: expect.stringMatching(/Unsupported XML encoding "iso-8859-1"/),
    });
    expect(thrown(() => parseWhole(Buffer.from(`<?xml encoding="utf-8"?>${okEnvelope}`)))).toBeInstanceOf(EwsParseError);
    expect(thrown(() => parseWhole(Buffer.from(`<?xml version="1.0"${' '.repeat(2000)}?>${okEnvelope}`)))).toBeInstanceOf(
      EwsParseError,
    );
    expect(thrown(() => parseWhole(Buffer.from('<?xml version="1.0"')))).toBeInstanceOf(EwsParseError);
  });

  it('refuses an XML declaration inside an envelope but reads `<?xml` inside CDATA as text', () => {
    const inside = okEnvelope.replace('<m:ResponseCode>', '<?xml version="1.0"?><m:ResponseCode>');
    expect(thrown(() => parseEnvelope(inside))).toBeInstanceOf(EwsParseError);
    const cdata = okEnvelope.replace(
      '</m:ResponseCode>',
      '</m:ResponseCode><m:MessageText><![CDATA[<?xml version="1.0"?> & <b>]]></m:MessageText>',
    );
    const body = parseEnvelope(cdata).body;
    expect(body.type === 'response' ? body.messages[0]?.messageText : undefined).toBe('<?xml version="1.0"?> & <b>');
  });
});

describe('maxEnvelopeBytes', () => {
  it('refuses an envelope over the cap, whole or in pieces', () => {
    const big = Buffer.from(paddedEnvelope(20_000));
    const err = thrown(() => parseWhole(big, { maxEnvelopeBytes: 10_000 }));
    expect(err).toBeInstanceOf(EwsEnvelopeTooLargeError);
    expect(err).toMatchObject({ code: 'EWS_ENVELOPE_TOO_LARGE', limitBytes: 10_000 });
    expect(thrown(() => parseBytewise(big, { maxEnvelopeBytes: 10_000 }))).toBeInstanceOf(EwsEnvelopeTooLargeError);
  });

  it('fails as soon as the cap is passed, without waiting for the envelope to end (bounded memory)', () => {
    const parser = new EnvelopeParser({ maxEnvelopeBytes: 64 * 1024 });
    const start = paddedEnvelope(0).replace(/<\/m:Notification>.*$/, '');
    parser.write(Buffer.from(start));
    const chunk = Buffer.from('<t:StatusEvent/>'.repeat(256)); // 4 KiB
    let written = start.length;
    const err = thrown(() => {
      for (;;) {
        parser.write(chunk);
        written += chunk.length;
      }
    });
    expect(err).toBeInstanceOf(EwsEnvelopeTooLargeError);
    expect(written).toBeLessThanOrEqual(64 * 1024);
  });

  it('accepts an envelope exactly at the cap and any number of envelopes each under it', () => {
    const one = paddedEnvelope(5_000);
    const size = Buffer.byteLength(one);
    expect(parseWhole(Buffer.from(one), { maxEnvelopeBytes: size })).toHaveLength(1);
    expect(thrown(() => parseWhole(Buffer.from(one), { maxEnvelopeBytes: size - 1 }))).toBeInstanceOf(EwsEnvelopeTooLargeError);
    const many = Buffer.from(one.repeat(50));
    expect(parseWhole(many, { maxEnvelopeBytes: size })).toHaveLength(50);
    const cuts = Array.from({ length: Math.floor(many.length / 1000) }, (_, i) => (i + 1) * 1000);
    expect(parseInPieces(many, cuts, { maxEnvelopeBytes: size })).toHaveLength(50);
  });

  it('counts bytes, not characters', () => {
    const wide = paddedEnvelope(0, '新'.repeat(1000)); // 3 bytes per character
    const chars = wide.length;
    expect(Buffer.byteLength(wide)).toBeGreaterThan(chars + 1500);
    expect(thrown(() => parseWhole(Buffer.from(wide), { maxEnvelopeBytes: chars + 100 }))).toBeInstanceOf(
      EwsEnvelopeTooLargeError,
    );
  });
});

describe('a body that is not XML', () => {
  const html =
    '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n' +
    '<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

  it.each([
    ['an HTML page', html],
    ['an HTML5 page with <!doctype html>', `<!doctype html>\n<html lang=en><meta charset=utf-8><title>Error</title>`],
    ['an HTML page with <!DOCTYPE html>', `<!DOCTYPE html>\n<HTML><BODY>Service Unavailable<BR></BODY></HTML>`],
    [
      'an XHTML page',
      '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" ' +
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
    ],
    ['an XHTML page without DOCTYPE', '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head></html>'],
    ['plain text', 'Service Unavailable'],
    ['JSON', '{"error":{"code":"ErrorServerBusy"}}'],
  ])('%s → EwsNotXmlError quoting the status and the first bytes', (_name, body) => {
    const err = thrown(() => parseEnvelope(body, { httpStatus: 502 }));
    expect(err).toBeInstanceOf(EwsNotXmlError);
    expect(err).toMatchObject({ code: 'EWS_NOT_XML', httpStatus: 502, bodyPreview: body.slice(0, 200) });
    expect((err as Error).message).toContain('HTTP 502');
    // The preview does not depend on chunking.
    const bytewise = thrown(() => parseBytewise(Buffer.from(body), { httpStatus: 502 }));
    expect(bytewise).toMatchObject({ bodyPreview: body.slice(0, 200) });
  });

  it('quotes at most 200 characters and fails without waiting for the end of a long page', () => {
    const page = `<html><body>${'x'.repeat(5000)}</body></html>`;
    const parser = new EnvelopeParser({ httpStatus: 503 });
    expect(parser.write(Buffer.from(page.slice(0, 100)))).toEqual([]);
    const err = thrown(() => parser.write(Buffer.from(page.slice(100, 400))));
    expect(err).toBeInstanceOf(EwsNotXmlError);
    expect((err as EwsNotXmlError).bodyPreview).toBe(page.slice(0, 200));
  });

  it('an empty body is not XML either', () => {
    expect(thrown(() => parseEnvelope('', { httpStatus: 500 }))).toMatchObject({ code: 'EWS_NOT_XML', httpStatus: 500 });
    expect(thrown(() => parseEnvelope(new Uint8Array()))).toBeInstanceOf(EwsNotXmlError);
  });

  it('a non-Envelope XML document is a parse error, not "not XML"', () => {
    const err = thrown(() => parseEnvelope('<?xml version="1.0"?><error code="42">nope</error>'));
    expect(err).toBeInstanceOf(EwsParseError);
    expect((err as Error).message).toMatch(/Expected a SOAP 1.1 Envelope/);
  });
});
