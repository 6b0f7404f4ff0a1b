/**
 * Server affinity for one subscription (Exchange 2013 and later). A subscription lives on one
 * mailbox server, but the client access front end may route each call anywhere; a call that lands
 * elsewhere gets `ErrorSubscriptionNotFound`. The fix Microsoft documents: Subscribe with
 * `X-AnchorMailbox` and `X-PreferServerAffinity: true`, keep the `X-BackEndOverrideCookie` the
 * response sets, and send the cookie and both headers with every later call of the subscription.
 */
import type { CookieJar } from './transport.js';

/** The affinity cookie's name, as Exchange sets it. */
export const BACKEND_COOKIE = 'X-BackEndOverrideCookie';

/** The header that asks the front end to pin the subscription to its mailbox server. */
export const AFFINITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'X-PreferServerAffinity': 'true' });

/**
 * A {@link CookieJar} that keeps the `X-BackEndOverrideCookie` of one subscription and hands every
 * other cookie to the caller's own jar, if any.
 */
export class SubscriptionAffinity implements CookieJar {
  private backend: string | undefined;

  /** @param next - A jar for every cookie (this one's included). Default: none. */
  constructor(private readonly next?: CookieJar) {}

  /** The value of the affinity cookie the server set, if it set one. */
  get backendCookie(): string | undefined {
    return this.backend;
  }

  /** Forgets the affinity cookie: the subscription it pinned is gone, and the next Subscribe may land elsewhere. */
  reset(): void {
    this.backend = undefined;
  }

  /**
   * The `Cookie` header for `url`: this subscription's `X-BackEndOverrideCookie` (once pinned),
   * then the caller's jar's cookies, without a second copy of ours. `undefined` when there are none.
   */
  cookieHeader(url: URL): string | undefined {
    const own = this.backend === undefined ? undefined : `${BACKEND_COOKIE}=${this.backend}`;
    const others = this.next?.cookieHeader(url);
    // The caller's jar may keep the same cookie: ours wins, so it is not sent twice.
    const rest = others
      ?.split(';')
      .map((part) => part.trim())
      .filter((part) => part !== '' && (own === undefined || !part.toLowerCase().startsWith(`${BACKEND_COOKIE.toLowerCase()}=`)))
      .join('; ');
    const parts = [own, rest].filter((part): part is string => part !== undefined && part !== '');
    return parts.length === 0 ? undefined : parts.join('; ');
  }

  /**
   * Takes the `X-BackEndOverrideCookie` from a response's `Set-Cookie` values (an expired or empty
   * one clears the pin), then hands every value to the caller's jar.
   */
  storeSetCookie(url: URL, setCookie: readonly string[]): void {
    for (const line of setCookie) {
      const pair = line.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0 || pair.slice(0, eq).trim().toLowerCase() !== BACKEND_COOKIE.toLowerCase()) continue;
      const value = pair.slice(eq + 1).trim();
      // An expired or emptied cookie (the server withdrawing the pin) clears it.
      const expired = /;\s*max-age\s*=\s*0\s*(;|$)/i.test(line) || value === '';
      this.backend = expired ? undefined : value;
    }
    this.next?.storeSetCookie(url, setCookie);
  }
}
