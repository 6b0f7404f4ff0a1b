/**
 * The one answer a Subscribe gets almost every time — success, one subscription id — recognised
 * by its exact text instead of going through the envelope parser (a SAX parser, a TextDecoder and
 * the envelope objects per response: most of a Subscribe's CPU time in the client after node's
 * HTTP). Recognition is strict: the whole body must be the envelope Exchange 2013–2019 and
 * Exchange Online write, byte for byte, with only the ServerVersionInfo numbers and the id free
 * (digits; the id's base64 alphabet). Anything else — another prefix, whitespace, a BOM, a
 * Watermark, an error, a fault, a non-ASCII byte — is not recognised, and the caller parses it as
 * before. Internal.
 */
import { MESSAGES_NS, SOAP_NS, TYPES_NS } from './xml.js';

const XSD_NS = 'http://www.w3.org/2001/XMLSchema';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Exchange's streaming Subscribe success answer, the id captured. Every part but the id and the version numbers is literal. */
const STREAMING_SUBSCRIBE_SUCCESS = new RegExp(
  '^' +
    literal('<?xml version="1.0" encoding="utf-8"?>') +
    literal(`<s:Envelope xmlns:s="${SOAP_NS}"><s:Header><h:ServerVersionInfo `) +
    'MajorVersion="\\d{1,9}" MinorVersion="\\d{1,9}" MajorBuildNumber="\\d{1,9}" MinorBuildNumber="\\d{1,9}" Version="[A-Za-z0-9_]{1,64}"' +
    literal(` xmlns:h="${TYPES_NS}" xmlns="${TYPES_NS}" xmlns:xsd="${XSD_NS}" xmlns:xsi="${XSI_NS}"/></s:Header>`) +
    literal(`<s:Body xmlns:xsd="${XSD_NS}" xmlns:xsi="${XSI_NS}"><m:SubscribeResponse xmlns:m="${MESSAGES_NS}" xmlns:t="${TYPES_NS}">`) +
    literal('<m:ResponseMessages><m:SubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SubscriptionId>') +
    '([A-Za-z0-9+/=]{1,1024})' +
    literal('</m:SubscriptionId></m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse></s:Body></s:Envelope>') +
    '$',
);

/**
 * The subscription id of a streaming Subscribe's success answer written exactly as Exchange writes
 * it, or `undefined` for any other text (to be parsed in full). `text` is the body decoded as
 * Latin-1: a byte above 0x7f never matches.
 */
export function streamingSubscribeSuccessId(text: string): string | undefined {
  // Like the parser's, the id may share memory with `text`: a caller that keeps it copies it.
  return STREAMING_SUBSCRIBE_SUCCESS.exec(text)?.[1];
}
