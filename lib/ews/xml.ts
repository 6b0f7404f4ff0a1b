/**
 * Minimal XML writing for SOAP envelopes: namespace constants, escaping, and element helpers.
 * Plain string building, no DOM: every builder in this folder produces small, fixed-shape documents.
 *
 * Characters XML 1.0 forbids (C0 controls other than TAB/LF/CR, U+FFFE/U+FFFF, unpaired
 * surrogates) are **rejected** with a `RangeError` naming the field, never stripped: the values we
 * write are ids, watermarks, addresses and URLs, and silently changing one would send a request
 * for a different object (or a notification about one) without anybody noticing.
 *
 * @packageDocumentation
 */

/** SOAP 1.1 envelope namespace. */
export const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/** EWS messages namespace (`m:`). */
export const MESSAGES_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';
/** EWS types namespace (`t:`). */
export const TYPES_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';
/** EWS SOAP-fault detail namespace (`e:`). */
export const ERRORS_NS = 'http://schemas.microsoft.com/exchange/services/2006/errors';

/** The namespaces by the prefixes this library writes. */
export const NS = {
  soap: SOAP_NS,
  m: MESSAGES_NS,
  t: TYPES_NS,
  e: ERRORS_NS,
} as const;

/** The XML declaration every envelope starts with. */
export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';

// Anything outside XML 1.0's `Char` production. With the `u` flag an unpaired surrogate is one
// code point in D800–DFFF and therefore matches.
const ILLEGAL_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<>"'\t\n\r]/;
const TEXT_SPECIAL_G = /[&<>\r]/g;
const ATTR_SPECIAL_G = /[&<>"'\t\n\r]/g;

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  // `>` is escaped too so that `]]>` can never appear in output.
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // Character references survive the parser's whitespace and end-of-line normalisation, so the
  // receiver sees exactly the string we were given.
  '\t': '&#x9;',
  '\n': '&#xA;',
  '\r': '&#xD;',
};

const replaceEntity = (ch: string): string => ENTITIES[ch] ?? ch;

/**
 * Throws a `RangeError` naming `field` when `value` holds a character XML 1.0 cannot carry.
 * @param field - The option path to name in the error, e.g. `impersonation.smtpAddress`.
 */
export function assertXmlChars(value: string, field: string): void {
  const match = ILLEGAL_XML_CHAR.exec(value);
  if (match) {
    const cp = match[0].codePointAt(0) ?? 0;
    throw new RangeError(
      `${field} contains a character not allowed in XML 1.0 (U+${cp.toString(16).toUpperCase().padStart(4, '0')} at index ${match.index})`,
    );
  }
}

/**
 * Escapes `value` for element content. Rejects characters illegal in XML 1.0 (see the module note).
 * @param field - Named in the error when `value` cannot be written. Default `'value'`.
 */
export function escapeText(value: string, field = 'value'): string {
  assertXmlChars(value, field);
  return TEXT_SPECIAL.test(value) ? value.replace(TEXT_SPECIAL_G, replaceEntity) : value;
}

/**
 * Escapes `value` for a double- or single-quoted attribute value, including TAB/LF/CR so that
 * attribute-value normalisation cannot alter it. Rejects characters illegal in XML 1.0.
 * @param field - Named in the error when `value` cannot be written. Default `'value'`.
 */
export function escapeAttribute(value: string, field = 'value'): string {
  assertXmlChars(value, field);
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_SPECIAL_G, replaceEntity) : value;
}

/**
 * ` name="value"` with the value escaped, or `''` when `value` is `undefined`.
 * @param field - Named in the error when `value` cannot be written. Default: the attribute name.
 */
export function attribute(name: string, value: string | number | boolean | undefined, field = name): string {
  if (value === undefined) return '';
  return ` ${name}="${typeof value === 'string' ? escapeAttribute(value, field) : String(value)}"`;
}

/**
 * `<qname>text</qname>` with the text escaped.
 * @param field - Named in the error when `text` cannot be written. Default: the element name.
 */
export function textElement(qname: string, text: string | number | boolean, field = qname): string {
  const body = typeof text === 'string' ? escapeText(text, field) : String(text);
  return `<${qname}>${body}</${qname}>`;
}
