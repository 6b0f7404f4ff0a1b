/**
 * Autodiscover for {@link EwsSimulator}: SOAP `GetUserSettings` at `/autodiscover/autodiscover.svc`
 * and POX at `/autodiscover/autodiscover.xml`, behind the same authentication as EWS, answering
 * per address with EWS URLs and a GroupingInformation, a redirect (address or URL), or an error.
 */
import type { ServerResponse } from 'node:http';
import { escapeXml } from './response-writer.js';
import { readXmlTree, type XmlElement } from '../ews/xml-tree.js';

/** The paths the simulator answers Autodiscover on (case-insensitive, as IIS). */
export const AUTODISCOVER_SOAP_PATH = '/autodiscover/autodiscover.svc';
export const AUTODISCOVER_POX_PATH = '/autodiscover/autodiscover.xml';

/** What Autodiscover says about one address. */
export type SimulatedAutodiscoverUser =
  | { readonly externalEwsUrl?: string; readonly internalEwsUrl?: string; readonly groupingInformation?: string }
  | { readonly redirectAddress: string }
  | { readonly redirectUrl: string }
  | { readonly error: 'InvalidUser' | 'ServerBusy' };

/** The simulator's `autodiscover` option. */
export interface SimulatedAutodiscover {
  /**
   * Answers per address (case-insensitive). Addresses not listed get this simulator's EWS URL as
   * both External and Internal EWS URL and GroupingInformation `SIM-MBX01`.
   */
  readonly users?: Readonly<Record<string, SimulatedAutodiscoverUser>>;
  /** Serve SOAP GetUserSettings. Default `true`. */
  readonly soap?: boolean;
  /** Serve POX. Default `true`. */
  readonly pox?: boolean;
  /** Answer every Autodiscover request with HTTP 302 to this URL instead. Default: none. */
  readonly httpRedirect?: string;
}

const AUTODISCOVER_NS = 'http://schemas.microsoft.com/exchange/2010/Autodiscover';

/** Counts and answers Autodiscover requests. */
export class AutodiscoverResponder {
  /** Requests answered, by protocol. */
  readonly counts = { soap: 0, pox: 0 };

  constructor(
    private readonly settings: SimulatedAutodiscover,
    private readonly ewsUrl: () => string,
  ) {}

  /** Whether `path` is an Autodiscover path this responder serves. */
  matches(path: string): boolean {
    const p = path.toLowerCase();
    return p === AUTODISCOVER_SOAP_PATH || p === AUTODISCOVER_POX_PATH;
  }

  private userFor(address: string): SimulatedAutodiscoverUser {
    const users = this.settings.users ?? {};
    const key = Object.keys(users).find((k) => k.toLowerCase() === address.toLowerCase());
    return key === undefined ? { externalEwsUrl: this.ewsUrl(), internalEwsUrl: this.ewsUrl(), groupingInformation: 'SIM-MBX01' } : users[key]!;
  }

  /** Answers an (already authenticated) request on an Autodiscover path. */
  answer(path: string, body: string, res: ServerResponse): void {
    if (this.settings.httpRedirect !== undefined) {
      res.writeHead(302, { Location: this.settings.httpRedirect, 'Content-Length': '0' }).end();
      return;
    }
    const pox = path.toLowerCase() === AUTODISCOVER_POX_PATH;
    if ((pox && this.settings.pox === false) || (!pox && this.settings.soap === false)) {
      res.writeHead(404, { 'Content-Type': 'text/html' }).end('<html><body>404 - Not found</body></html>');
      return;
    }
    let root: XmlElement;
    try {
      root = readXmlTree(body);
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('Bad request');
      return;
    }
    if (pox) {
      this.counts.pox++;
      const request = root.children.find((c) => c.local === 'Request');
      const address = request?.children.find((c) => c.local === 'EMailAddress')?.text.trim() ?? '';
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(this.poxAnswer(address));
      return;
    }
    this.counts.soap++;
    const find = (e: XmlElement | undefined, local: string): XmlElement | undefined => e?.children.find((c) => c.local === local);
    const users = find(find(find(find(root, 'Body'), 'GetUserSettingsRequestMessage'), 'Request'), 'Users');
    const addresses = (users?.children ?? []).map((u) => find(u, 'Mailbox')?.text.trim() ?? '');
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(this.soapAnswer(addresses));
  }

  private soapAnswer(addresses: readonly string[]): string {
    const responses = addresses.map((address) => {
      const user = this.userFor(address);
      const head = (code: string, message: string, target?: string): string =>
        `<ErrorCode>${code}</ErrorCode><ErrorMessage>${escapeXml(message)}</ErrorMessage>` +
        (target === undefined ? '<RedirectTarget i:nil="true"/>' : `<RedirectTarget>${escapeXml(target)}</RedirectTarget>`) +
        '<UserSettingErrors/>';
      if ('redirectAddress' in user) return `<UserResponse>${head('RedirectAddress', 'Redirection address.', user.redirectAddress)}<UserSettings/></UserResponse>`;
      if ('redirectUrl' in user) return `<UserResponse>${head('RedirectUrl', 'Redirection URL.', user.redirectUrl)}<UserSettings/></UserResponse>`;
      if ('error' in user) return `<UserResponse>${head(user.error, user.error === 'InvalidUser' ? `Invalid user: '${address}'` : 'The server is too busy.')}<UserSettings/></UserResponse>`;
      const settings = [
        ['ExternalEwsUrl', user.externalEwsUrl],
        ['InternalEwsUrl', user.internalEwsUrl],
        ['GroupingInformation', user.groupingInformation],
      ]
        .filter((pair): pair is [string, string] => pair[1] !== undefined)
        .map(([name, value]) => `<UserSetting i:type="StringSetting"><Name>${name}</Name><Value>${escapeXml(value)}</Value></UserSetting>`)
        .join('');
      return `<UserResponse>${head('NoError', 'No error.')}<UserSettings>${settings}</UserSettings></UserResponse>`;
    });
    return (
      '<?xml version="1.0" encoding="utf-8"?>' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing">' +
      `<s:Header><a:Action s:mustUnderstand="1">${AUTODISCOVER_NS}/Autodiscover/GetUserSettingsResponse</a:Action>` +
      `<h:ServerVersionInfo xmlns:h="${AUTODISCOVER_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><h:MajorVersion>15</h:MajorVersion><h:MinorVersion>1</h:MinorVersion><h:MajorBuildNumber>2507</h:MajorBuildNumber><h:MinorBuildNumber>6</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo></s:Header>` +
      `<s:Body><GetUserSettingsResponseMessage xmlns="${AUTODISCOVER_NS}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
      `<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>${responses.join('')}</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`
    );
  }

  private poxAnswer(address: string): string {
    const user = this.userFor(address);
    let account: string;
    if ('redirectAddress' in user) account = `<Action>redirectAddr</Action><RedirectAddr>${escapeXml(user.redirectAddress)}</RedirectAddr>`;
    else if ('redirectUrl' in user) account = `<Action>redirectUrl</Action><RedirectUrl>${escapeXml(user.redirectUrl)}</RedirectUrl>`;
    else if ('error' in user) {
      return (
        '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">' +
        `<Response><Error><ErrorCode>${user.error === 'InvalidUser' ? '500' : '503'}</ErrorCode><Message>${user.error}</Message></Error></Response></Autodiscover>`
      );
    } else {
      const protocol = (type: string, url: string | undefined): string => (url === undefined ? '' : `<Protocol><Type>${type}</Type><EwsUrl>${escapeXml(url)}</EwsUrl></Protocol>`);
      account = `<Action>settings</Action>${protocol('EXCH', user.internalEwsUrl)}${protocol('EXPR', user.externalEwsUrl)}`;
    }
    return (
      '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">' +
      '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">' +
      `<Account><AccountType>email</AccountType>${account}</Account></Response></Autodiscover>`
    );
  }
}
