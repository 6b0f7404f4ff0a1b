/**
 * Reading how long a server asked us to wait: the HTTP `Retry-After` header and EWS's
 * `BackOffMilliseconds` (MessageXml of an `ErrorServerBusy` fault or response message).
 */

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3): either delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). Returns the wait in milliseconds (never negative), or
 * `undefined` when the header is absent or unreadable.
 *
 * @param value - The header value as Node gives it (a string, or absent).
 * @param nowMs - The current time in epoch milliseconds, for the date form. Default `Date.now()`.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value) as string | undefined;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // An HTTP-date always names its month; without letters Date.parse would read '-5' as a year.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  // Date.parse accepts the IMF-fixdate and the obsolete RFC 850/asctime forms.
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * Reads `BackOffMilliseconds` from a MessageXml value map. Returns `undefined` when absent or not
 * a non-negative integer.
 */
export function backOffMsFrom(messageXml: Readonly<Record<string, string>> | undefined): number | undefined {
  const raw = messageXml?.['BackOffMilliseconds'];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return undefined;
  const ms = Number(text);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
