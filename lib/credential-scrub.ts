/**
 * Keeping credentials out of error text. A server (or a proxy in front of it) may echo our request
 * in its error page — `Authorization` header included — and that text ends up in an error's
 * `message` or `bodyPreview`, then in a log. {@link scrubCredentials} is the one function every
 * such text passes through: the `EwsBridgeError` constructor applies it to every message, and
 * `EwsNotXmlError` to its preview.
 *
 * What it removes:
 * - the value of `Authorization:` / `Proxy-Authorization:` header lines (also as `name=value` or a
 *   JSON `"authorization": "…"` pair),
 * - the credential after an HTTP auth scheme name (`Basic …`, `Bearer …`, `NTLM …`,
 *   `Negotiate …`, `Kerberos …`),
 * - every configured secret the transport has used (Basic/NTLM passwords, the Basic credential
 *   pair in base64, bearer tokens): see {@link rememberSecret}.
 *
 * @packageDocumentation
 */

/** What a removed credential is replaced with. */
export const REDACTED = '[redacted]';

// `Authorization: …` to the end of the line; also `authorization="…"` and JSON `"authorization": "…"`.
const AUTH_HEADER = /\b((?:proxy-)?authori[sz]ation)(["']?\s*[:=]\s*)("[^"\r\n]*"|'[^'\r\n]*'|[^\r\n,;}]*)/gi;
// A scheme name followed by something that looks like a credential: 8+ token68 characters.
const SCHEME_TOKEN = /\b(Basic|Bearer|NTLM|Negotiate|Kerberos)(\s+)([A-Za-z0-9+/=._~-]{8,})/gi;

/**
 * Whether `token` looks like a credential rather than an English word after "Basic"
 * ("Basic authentication failed" keeps its words): it holds a digit or a token68 symbol, or is long.
 */
function looksLikeCredential(token: string): boolean {
  return token.length >= 24 || /[0-9+/=._~-]/.test(token);
}

/** Secrets shorter than this are not searched for: they would redact ordinary words. */
const MIN_SECRET_CHARS = 4;
/** How many secrets are remembered (bearer tokens rotate; the oldest are forgotten first). */
const MAX_SECRETS = 64;
const secrets = new Set<string>();

/**
 * Remembers a credential the transport sent or was configured with, so that
 * {@link scrubCredentials} removes it from any server text even without a scheme name in front.
 * Process-wide and bounded to the {@link MAX_SECRETS} most recent values. Values shorter than four
 * characters are ignored.
 */
export function rememberSecret(value: string | undefined): void {
  if (value === undefined || value.length < MIN_SECRET_CHARS) return;
  if (secrets.has(value)) {
    // Most recently used last, so eviction drops the stalest.
    secrets.delete(value);
  } else if (secrets.size >= MAX_SECRETS) {
    const oldest = secrets.values().next().value;
    if (oldest !== undefined) secrets.delete(oldest);
  }
  secrets.add(value);
}

/**
 * `text` with every credential-like part replaced by `[redacted]` (see the module notes).
 * Text without one is returned unchanged (the same string).
 */
export function scrubCredentials(text: string): string {
  let out = text.replace(AUTH_HEADER, (_match, name: string, separator: string) => `${name}${separator}${REDACTED}`);
  out = out.replace(SCHEME_TOKEN, (match, scheme: string, space: string, token: string) =>
    looksLikeCredential(token) ? `${scheme}${space}${REDACTED}` : match,
  );
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}
