/**
 * Reads an ews-javascript-api `ExchangeService` (and the arguments of its
 * `SubscribeToPushNotifications`) into source options: endpoint, credentials, impersonation,
 * headers, server version, folders and event types. Only public members of its classes are used,
 * except where noted; the module itself is passed in (loaded lazily by the adapter).
 *
 * @packageDocumentation
 */
import type * as Ejs from 'ews-javascript-api';
import type { EventType as EjsEventType, ExchangeService, FolderId } from 'ews-javascript-api';
import { type EventType, type EwsAuth, type ExchangeVersion, type FolderSpec } from '../../lib/index.js';
import { EXCHANGE_VERSIONS } from '../../lib/wire.js';
import { describeKind, describeValue } from '../../lib/validate.js';

/** The ews-javascript-api module, as loaded by `import('ews-javascript-api')`. */
export type EjsModule = typeof Ejs;

/** What an `ExchangeService` says about where and as whom to call EWS. */
export interface ServiceEndpoint {
  readonly url: string;
  readonly auth: EwsAuth;
  readonly mailbox: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly requestServerVersion: ExchangeVersion;
}

/** Credentials as the adapter reads them: every `ExchangeCredentials` has these public members. */
interface CredentialsShape {
  readonly UserName?: string | null;
  readonly Password?: string | null;
  /** Not in ews-javascript-api 0.15 (its WebCredentials takes user and password only); read when a build has it. */
  readonly Domain?: string | null;
  PrepareWebRequest?(request: { headers: Record<string, string> }): void;
}

/**
 * The service's credentials as an {@link EwsAuth}:
 * - `OAuthCredentials(token)` → bearer (the token as its own `PrepareWebRequest` writes it);
 * - `WebCredentials(user, password)` (or any credentials that authorize with Basic) → basic, the
 *   user name sent as given (`DOMAIN\\user` works), prefixed with `Domain\\` when the object has one;
 * - none → no Authorization header.
 */
function authOf(credentials: unknown): EwsAuth {
  if (credentials === null || credentials === undefined) return { type: 'none' };
  const c = credentials as CredentialsShape;
  if (typeof c !== 'object' || typeof c.PrepareWebRequest !== 'function') {
    // Credentials are secrets: only the kind of value is named.
    throw new TypeError(`service.Credentials must be WebCredentials or OAuthCredentials (got ${describeKind(credentials)})`);
  }
  const request = { headers: {} as Record<string, string> };
  c.PrepareWebRequest(request);
  const authorization = request.headers['Authorization'] ?? request.headers['authorization'];
  if (typeof authorization === 'string' && /^Bearer /i.test(authorization)) {
    return { type: 'bearer', token: authorization.slice('Bearer '.length) };
  }
  if (typeof authorization === 'string' && /^Basic /i.test(authorization) && typeof c.UserName === 'string' && typeof c.Password === 'string') {
    const domain = typeof c.Domain === 'string' && c.Domain !== '' ? `${c.Domain}\\` : '';
    return { type: 'basic', username: `${domain}${c.UserName}`, password: c.Password };
  }
  throw new TypeError('service.Credentials must be WebCredentials(user, password) or OAuthCredentials(token)');
}

/** ews-javascript-api's ExchangeVersion names this library can put in RequestServerVersion. */
function versionOf(ejs: EjsModule, service: ExchangeService): ExchangeVersion {
  const value = service.RequestedServerVersion;
  const name = ejs.ExchangeVersion[value];
  if (typeof name === 'string' && (EXCHANGE_VERSIONS as readonly string[]).includes(name)) return name as ExchangeVersion;
  // The dated versions (V2015_10_05 …) are later than Exchange2016 and speak its schema.
  if (typeof name === 'string' && /^V20\d\d_\d\d_\d\d$/.test(name)) return 'Exchange2016';
  throw new RangeError(
    `service.RequestedServerVersion must be Exchange2010_SP1 or later: notifications need it (got ${describeValue(name ?? value)})`,
  );
}

/** The service's endpoint, credentials, impersonation, headers and version. */
export function serviceEndpoint(ejs: EjsModule, service: ExchangeService): ServiceEndpoint {
  if (typeof service !== 'object' || service === null) throw new TypeError(`service must be an ExchangeService (got ${describeValue(service)})`);
  const url = service.Url?.AbsoluteUri;
  // A URL may carry user:password: only the kind of value is named.
  if (typeof url !== 'string' || url === '') throw new TypeError(`service.Url must be set (e.g. new Uri("https://mail.contoso.com/EWS/Exchange.asmx")) (got ${describeKind(url)})`);

  let mailbox: string | undefined;
  const impersonated = service.ImpersonatedUserId;
  if (impersonated !== null && impersonated !== undefined) {
    if (impersonated.IdType !== ejs.ConnectingIdType.SmtpAddress) {
      const idType = (ejs.ConnectingIdType as unknown as Record<number, string | undefined>)[impersonated.IdType as unknown as number];
      throw new RangeError(
        `service.ImpersonatedUserId must use ConnectingIdType.SmtpAddress (the bridge impersonates by SMTP address) (got ${idType === undefined ? describeValue(impersonated.IdType) : `ConnectingIdType.${idType}`})`,
      );
    }
    if (typeof impersonated.Id !== 'string' || impersonated.Id === '') throw new TypeError(`service.ImpersonatedUserId.Id must be an SMTP address (got ${describeValue(impersonated.Id)})`);
    mailbox = impersonated.Id;
  }

  let headers: Record<string, string> | undefined;
  const dictionary = service.HttpHeaders;
  if (dictionary && dictionary.Count > 0) {
    headers = {};
    for (const name of dictionary.Keys) {
      const value = dictionary.get(name);
      if (typeof value === 'string') headers[name] = value;
    }
  }
  return { url, auth: authOf(service.Credentials), mailbox, headers, requestServerVersion: versionOf(ejs, service) };
}

/**
 * `FolderId`s as folder specs: `new FolderId(WellKnownFolderName.Inbox)` → `'inbox'` (with its
 * `Mailbox`, when set, for another mailbox's folder); `new FolderId(uniqueId)` → `{ id, changeKey }`.
 */
export function folderSpecs(ejs: EjsModule, folderIds: readonly FolderId[]): FolderSpec[] {
  if (!Array.isArray(folderIds) || folderIds.length === 0) throw new TypeError(`folderIds must be a non-empty array of FolderId (got ${describeValue(folderIds)})`);
  return folderIds.map((folder, i) => {
    if (typeof folder !== 'object' || folder === null) throw new TypeError(`folderIds[${i}] must be a FolderId (got ${describeValue(folder)})`);
    const wellKnown = folder.FolderName;
    if (wellKnown !== null && wellKnown !== undefined) {
      const name = ejs.WellKnownFolderName[wellKnown];
      if (typeof name !== 'string') throw new RangeError(`folderIds[${i}].FolderName must be a WellKnownFolderName (got ${describeValue(wellKnown)})`);
      const distinguishedId = name.toLowerCase();
      const owner = folder.Mailbox?.Address;
      return typeof owner === 'string' && owner !== '' ? { distinguishedId, mailbox: owner } : distinguishedId;
    }
    if (typeof folder.UniqueId !== 'string' || folder.UniqueId === '') throw new TypeError(`folderIds[${i}] has neither a FolderName nor a UniqueId`);
    return folder.ChangeKey ? { id: folder.UniqueId, changeKey: folder.ChangeKey } : { id: folder.UniqueId };
  });
}

/** `EventType` enum values as event type names. At least one is required, as ews-javascript-api requires. */
export function eventTypeNames(ejs: EjsModule, eventTypes: readonly EjsEventType[]): EventType[] {
  if (eventTypes.length === 0) throw new RangeError('eventTypes must name at least one EventType');
  return eventTypes.map((value, i) => {
    const name = ejs.EventType[value];
    if (typeof name !== 'string' || name === 'Status') {
      throw new RangeError(`eventTypes[${i}] must be an EventType other than Status (got ${describeValue(name ?? value)})`);
    }
    return name as EventType;
  });
}

/** What the folders and event types of an ews-javascript-api Subscribe call watch, as source options. */
export type WatchedOptions = ({ readonly subscribeToAllFolders: true } | { readonly folders: FolderSpec[] }) & { readonly eventTypes: EventType[] };

/**
 * The folders (`undefined`: every folder, as `SubscribeToStreamingNotificationsOnAllFolders`) and
 * event types of an ews-javascript-api Subscribe call, as source options.
 */
export function watchedOf(ejs: EjsModule, folderIds: readonly FolderId[] | undefined, eventTypes: readonly EjsEventType[]): WatchedOptions {
  const where = folderIds === undefined ? { subscribeToAllFolders: true as const } : { folders: folderSpecs(ejs, folderIds) };
  return { ...where, eventTypes: eventTypeNames(ejs, eventTypes) };
}

/** The connection options of a source that does what `service` would: URL, credentials, impersonation, headers, version. */
export function endpointOptionsOf(endpoint: ServiceEndpoint): {
  readonly url: string;
  readonly auth: EwsAuth;
  readonly mailbox?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly requestServerVersion: ExchangeVersion;
} {
  return {
    url: endpoint.url,
    auth: endpoint.auth,
    ...(endpoint.mailbox === undefined ? {} : { mailbox: endpoint.mailbox }),
    ...(endpoint.headers === undefined ? {} : { headers: endpoint.headers }),
    requestServerVersion: endpoint.requestServerVersion,
  };
}
