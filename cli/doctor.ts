/**
 * `ews-push-bridge doctor --config FILE`: proves a setup before go-live. Checks in order — DNS,
 * TCP, TLS (chain, name, expiry), that the URL answers as EWS, the auth schemes offered and whether
 * the configured one works, Extended Protection, the server version, each mailbox impersonated and
 * its folders found, optionally a streaming test event, the affinity cookie, throttling, and with a
 * `coordinator` its Redis and lease group (doctor-coordinator.ts) — and
 * prints a table with a fix for every failure. Exit 0 only when every check the configuration
 * needs passed (warnings do not fail it).
 *
 * @packageDocumentation
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { checkServerIdentity, connect as tlsConnect, rootCertificates, type PeerCertificate } from 'node:tls';
import { firstValueFrom, filter, take, tap, timeout } from 'rxjs';
import { EwsBridgeError, streamingSignals, type EwsAuth } from '../lib/index.js';
import { EwsResponseError } from '../lib/entry-errors.js';
import type { CookieJar } from '../lib/entry-types.js';
import {
  authenticateMessage,
  buildPullSubscribeRequest,
  buildUnsubscribeRequest,
  createEwsAgent,
  endPointHashAlgorithm,
  envelopeError,
  fileTimeNow,
  negotiateMessage,
  parseChallengeMessage,
  postSoap,
  SOAP_ACTIONS,
  type EwsEnvelope,
  type ServerVersionInfo,
} from '../lib/wire.js';
import type { BridgeConfig } from './config.js';

export type { CheckStatus, DoctorCheck } from './doctor-check.js';
import type { CheckStatus, DoctorCheck } from './doctor-check.js';
import { coordinatorChecks } from './doctor-coordinator.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { RedisImporter } from './redis-peer.js';

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  readonly config: BridgeConfig;
  /** Wait for a test event on a streaming subscription of the first mailbox. Default `false`. */
  readonly sendTestMail?: boolean;
  /** How long to wait for that event. Default `120_000`. */
  readonly testMailTimeoutMs?: number;
  /** Called once the streaming subscription is open (tests make the event happen here). Default: none. */
  readonly onWaitingForMail?: (mailbox: string) => void;
  /** Print JSON instead of a table. Default `false`. */
  readonly json?: boolean;
  readonly stdout: { write(chunk: string): unknown };
  readonly signal?: AbortSignal;
  /** Per network step. Default `15_000`. */
  readonly stepTimeoutMs?: number;
  /** Loads ioredis for the coordinator's checks (tests). Default: `import('ioredis')`. */
  readonly importRedis?: RedisImporter;
}

/** The report: every check, and whether the setup is good to go. */
export interface DoctorReport {
  readonly ok: boolean;
  readonly checks: readonly DoctorCheck[];
}

/** Response codes that say "throttled" (budget or connection count), with what to do. */
const THROTTLING_FIXES: Readonly<Record<string, string>> = {
  ErrorExceededConnectionCount: 'too many concurrent connections for this account: use a StreamingGroup per mailbox server, or raise EWSMaxConcurrency / HangingConnectionLimit in a dedicated throttling policy (New-ThrottlingPolicy, Set-ThrottlingPolicyAssociation)',
  ErrorExceededSubscriptionCount: 'the account holds too many subscriptions (EWSMaxSubscriptions): remove stale ones or raise it in a dedicated throttling policy',
  ErrorServerBusy: 'the server is throttling this account (its budget is used up): give the service account its own throttling policy with higher EWS limits',
  ErrorTooManyObjectsOpened: 'too many objects open for this account: lower concurrency or raise the throttling policy',
};

const MAILBOX_FIXES: Readonly<Record<string, string>> = {
  ErrorImpersonateUserDenied:
    'grant impersonation: New-ManagementRoleAssignment -Name ews-bridge -Role ApplicationImpersonation -User <service account> -CustomRecipientWriteScope <scope> (see docs/deployment-auth.md)',
  ErrorImpersonationDenied: 'grant the ApplicationImpersonation role to the service account, scoped to these mailboxes (see docs/deployment-auth.md)',
  ErrorNonExistentMailbox: 'check the address (it must be a mailbox\'s primary SMTP address in this organisation)',
  ErrorInvalidSmtpAddress: 'check the address',
  ErrorFolderNotFound: 'check the folder names in the configuration (distinguished names such as inbox, calendar, or folder ids)',
  ErrorAccessDenied: 'the account may not open this mailbox: check ApplicationImpersonation and any EWS application access policy (Set-CASMailbox -EwsEnabled, EwsApplicationAccessPolicy)',
  ErrorProxyRequestNotAllowed: 'the mailbox lives on another site: use the EWS URL Autodiscover gives for it',
  ErrorMailboxMoveInProgress: 'the mailbox is being moved: try again after the move',
  ErrorMailboxStoreUnavailable: 'the mailbox database is offline: try again later',
};

function authFix(auth: EwsAuth, message: string): string {
  if (/channel binding/i.test(message)) {
    return 'check the password; if it is right, Extended Protection refused the binding: connect to Exchange directly (no TLS-inspecting proxy), or terminate TLS on a device Exchange trusts for Extended Protection';
  }
  switch (auth.type) {
    case 'ntlm':
      return 'check user name, domain and password; the account must not be locked or need a password change; NTLM must be enabled on the EWS virtual directory (Get-WebServicesVirtualDirectory | fl *Authentication*)';
    case 'negotiate':
      return 'check the Kerberos ticket (klist; KRB5CCNAME or KRB5_CLIENT_KTNAME), the SPN (setspn -Q HTTP/<host>), clock skew under 5 minutes, and that Negotiate is enabled on the EWS virtual directory';
    case 'basic':
      return 'check user name and password; Basic must be enabled on the EWS virtual directory (it is off by default on 2019)';
    case 'bearer':
      return 'check the token (audience, expiry, the EWS.AccessAsUser.All or full_access_as_app permission)';
    default:
      return 'configure ews.auth: the server wants credentials';
  }
}

function versionText(version: ServerVersionInfo): string {
  const build = [version.majorVersion, version.minorVersion, version.majorBuildNumber, version.minorBuildNumber].filter((n) => n !== undefined).join('.');
  const name =
    version.majorVersion === 14 ? 'Exchange 2010' : version.majorVersion === 15 ? ({ 0: 'Exchange 2013', 1: 'Exchange 2016', 2: 'Exchange 2019 or SE' } as Record<number, string>)[version.minorVersion ?? -1] ?? 'Exchange 15' : 'Exchange';
  return `${name} (${build}${version.version ? `, ${version.version}` : ''})`;
}

interface ProbeAnswer {
  readonly status: number;
  readonly schemes: string[];
  readonly contentType: string;
  readonly body: string;
}

/** One unauthenticated POST to the EWS URL: what answers there, and which schemes it offers. */
function probe(url: URL, agent: http.Agent, timeoutMs: number, signal: AbortSignal | undefined, authorization?: string): Promise<ProbeAnswer & { www: string[] }> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': '0', ...(authorization ? { Authorization: authorization } : {}) },
      timeout: timeoutMs,
      ...(signal ? { signal } : {}),
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 4096) chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const www: string[] = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) if (res.rawHeaders[i]?.toLowerCase() === 'www-authenticate') www.push(res.rawHeaders[i + 1] ?? '');
        resolve({
          status: res.statusCode ?? 0,
          www,
          schemes: [...new Set(www.map((w) => w.trim().split(/\s+/)[0] ?? '').filter((s) => s !== ''))],
          contentType: res.headers['content-type'] ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.end();
  });
}

/** Which `WWW-Authenticate` scheme the configured auth needs. */
function schemeFor(auth: EwsAuth): string | undefined {
  return { ntlm: 'NTLM', negotiate: 'Negotiate', basic: 'Basic', bearer: 'Bearer', none: undefined }[auth.type];
}

/** A recording cookie jar: keeps cookies (for affinity) and says whether the affinity cookie came. */
class RecordingJar implements CookieJar {
  readonly cookies = new Map<string, string>();
  cookieHeader(): string | undefined {
    return this.cookies.size === 0 ? undefined : [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  storeSetCookie(_url: URL, setCookie: readonly string[]): void {
    for (const line of setCookie) {
      const pair = line.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
}

/**
 * Runs the checks and prints the report.
 *
 * @returns the report (also printed) and the exit code: 0 when every needed check passed.
 */
export async function runDoctor(options: DoctorOptions): Promise<{ report: DoctorReport; exitCode: ExitCode }> {
  const { config } = options;
  const stepTimeoutMs = options.stepTimeoutMs ?? 15_000;
  const checks: DoctorCheck[] = [];
  const add = (check: DoctorCheck): DoctorCheck => {
    checks.push(check);
    return check;
  };
  const url = new URL(config.ews.url);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const throttled = new Map<string, string>();
  const noteThrottling = (error: unknown): void => {
    const code = error instanceof EwsResponseError ? error.responseCode : undefined;
    if (code !== undefined && THROTTLING_FIXES[code] !== undefined) throttled.set(code, THROTTLING_FIXES[code]);
  };

  const finish = async (): Promise<{ report: DoctorReport; exitCode: ExitCode }> => {
    // The coordinator is checked whatever became of the EWS checks: it is another system.
    const coordinator = config.coordinator;
    if (coordinator !== undefined) {
      const mailboxes = config.mailboxes.map((m) => m.mailbox ?? '');
      for (const check of await coordinatorChecks(coordinator, { mailboxes, stepTimeoutMs, ...(options.importRedis ? { importRedis: options.importRedis } : {}) })) add(check);
    }
    const ok = checks.every((c) => c.status !== 'fail');
    const report: DoctorReport = { ok, checks };
    options.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report));
    return { report, exitCode: ok ? EXIT.ok : EXIT.failure };
  };
  const skipRest = (ids: readonly [string, string][], why: string): void => {
    for (const [id, title] of ids) add({ id, title, status: 'skip', detail: why });
  };
  const LATER: [string, string][] = [
    ['ews', 'URL answers as EWS'],
    ['auth-schemes', 'Authentication schemes offered'],
    ['auth', 'Authentication works'],
    ['extended-protection', 'Extended Protection'],
    ['server-version', 'Server version'],
  ];

  // 1. DNS
  let address: string;
  try {
    address = (await lookup(url.hostname)).address;
    add({ id: 'dns', title: 'DNS', status: 'pass', detail: `${url.hostname} → ${address}` });
  } catch (error) {
    add({ id: 'dns', title: 'DNS', status: 'fail', detail: `${url.hostname} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'error'})`, fix: 'check the host name in ews.url and this machine\'s DNS' });
    skipRest([['tcp', 'TCP'], ['tls', 'TLS'], ...LATER], 'DNS failed');
    return finish();
  }

  // 2. TCP
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = netConnect({ host: address, port, timeout: stepTimeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('timeout', () => {
        socket.destroy();
        reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
      });
      socket.once('error', reject);
    });
    add({ id: 'tcp', title: 'TCP', status: 'pass', detail: `${address}:${port} accepts connections` });
  } catch (error) {
    add({ id: 'tcp', title: 'TCP', status: 'fail', detail: `${address}:${port}: ${(error as NodeJS.ErrnoException).code ?? 'failed'}`, fix: 'check the port in ews.url, firewalls and load balancer between this machine and Exchange' });
    skipRest([['tls', 'TLS'], ...LATER], 'TCP failed');
    return finish();
  }

  // 3. TLS
  const tlsSettings = url.protocol === 'https:' ? { ...(config.ews.ca ? { ca: config.ews.ca } : {}), rejectUnauthorized: config.ews.rejectUnauthorized } : undefined;
  if (url.protocol === 'https:') {
    try {
      const peer = await new Promise<{ cert: PeerCertificate; authorized: boolean; reason: string | undefined }>((resolve, reject) => {
        const socket = tlsConnect({
          host: address,
          port,
          ...(/^[\d.:]+$/.test(url.hostname) ? {} : { servername: url.hostname }),
          ...(config.ews.ca ? { ca: [...rootCertificates, config.ews.ca.toString('utf8')] } : {}),
          rejectUnauthorized: false,
          timeout: stepTimeoutMs,
        });
        socket.once('secureConnect', () => {
          const cert = socket.getPeerCertificate(false);
          // Node checks the name only with rejectUnauthorized; check it here the same way.
          const nameError = (socket as unknown as { authorizationError?: Error }).authorizationError;
          const hostError = cert.raw ? checkServerIdentity(url.hostname, cert) : undefined;
          resolve({ cert, authorized: socket.authorized && hostError === undefined, reason: (nameError ?? hostError)?.toString() });
          socket.destroy();
        });
        socket.once('timeout', () => {
          socket.destroy();
          reject(new Error('TLS handshake timed out'));
        });
        socket.once('error', reject);
      });
      const daysLeft = Math.floor((Date.parse(peer.cert.valid_to) - Date.now()) / 86_400_000);
      const hash = peer.cert.raw ? endPointHashAlgorithm(peer.cert.raw) : 'unknown';
      const subject = peer.cert.subjectaltname ?? `CN=${String(peer.cert.subject?.CN ?? '?')}`;
      if (!peer.authorized && config.ews.rejectUnauthorized) {
        add({
          id: 'tls',
          title: 'TLS',
          status: 'fail',
          detail: `certificate refused: ${peer.reason ?? 'untrusted'} (${subject})`,
          fix: 'give the CA that signed the Exchange certificate in ews.caFile (PEM), or use the name the certificate is issued to in ews.url',
        });
        skipRest(LATER, 'TLS failed');
        return finish();
      }
      add({
        id: 'tls',
        title: 'TLS',
        status: daysLeft < 14 || !peer.authorized ? 'warn' : 'pass',
        detail: `${peer.authorized ? 'trusted' : 'NOT verified (rejectUnauthorized: false)'}, ${subject}, expires in ${daysLeft} days, channel binding hash ${hash}`,
        ...(daysLeft < 14 ? { fix: 'renew the Exchange certificate' } : !peer.authorized ? { fix: 'trust the CA (ews.caFile) and turn verification back on' } : {}),
      });
    } catch (error) {
      add({ id: 'tls', title: 'TLS', status: 'fail', detail: `handshake failed: ${error instanceof Error ? error.message : String(error)}`, fix: 'is this port TLS? (http:// vs https:// in ews.url)' });
      skipRest(LATER, 'TLS failed');
      return finish();
    }
  } else {
    add({ id: 'tls', title: 'TLS', status: 'warn', detail: 'plain http: credentials and mail travel unencrypted', fix: 'use https:// (Exchange serves EWS over TLS)' });
  }

  const agent = createEwsAgent({ url, ...(tlsSettings ? { tls: tlsSettings } : {}) });
  try {
    // 4. EWS answers, 5. schemes offered
    let offered: string[] = [];
    try {
      const answer = await probe(url, agent, stepTimeoutMs, options.signal);
      offered = answer.schemes;
      const looksEws = answer.status === 401 || /xml/i.test(answer.contentType) || answer.body.includes('schemas.xmlsoap.org/soap/envelope');
      if (!looksEws) {
        add({
          id: 'ews',
          title: 'URL answers as EWS',
          status: 'fail',
          detail: `HTTP ${answer.status} ${answer.contentType || ''}`.trim(),
          fix: 'ews.url should end in /EWS/Exchange.asmx on the Exchange (or load balancer) host; a proxy may be answering instead',
        });
        skipRest(LATER.slice(1), 'not an EWS endpoint');
        return finish();
      }
      add({ id: 'ews', title: 'URL answers as EWS', status: 'pass', detail: `HTTP ${answer.status}${answer.status === 401 ? ' (asks for credentials, as EWS does)' : ''}` });
    } catch (error) {
      add({ id: 'ews', title: 'URL answers as EWS', status: 'fail', detail: error instanceof Error ? error.message : String(error), fix: 'check ews.url' });
      skipRest(LATER.slice(1), 'no answer');
      return finish();
    }
    const wanted = schemeFor(config.ews.auth);
    const offeredText = offered.length === 0 ? 'none (anonymous)' : offered.join(', ');
    const schemeOk = wanted === undefined || offered.some((s) => s.toLowerCase() === wanted.toLowerCase()) || (wanted === 'NTLM' && offered.some((s) => /^negotiate$/i.test(s)));
    add({
      id: 'auth-schemes',
      title: 'Authentication schemes offered',
      status: schemeOk ? 'pass' : 'fail',
      detail: `offered: ${offeredText}; configured: ${config.ews.auth.type}`,
      ...(schemeOk ? {} : { fix: `configure one the server offers (${offeredText}) or enable ${wanted} on the EWS virtual directory` }),
    });

    // 6. auth works (a Subscribe for the first mailbox), 7. server version, 10. affinity
    const mailboxes = config.mailboxes.length === 0 ? [{ mailbox: undefined, folders: ['inbox'] as const, subscribeToAllFolders: false, eventTypes: undefined }] : config.mailboxes;
    const first = mailboxes[0]!;
    const jar = new RecordingJar();
    const anchor = config.ews.anchorMailbox ?? first.mailbox;
    const endpoint = {
      url,
      auth: config.ews.auth,
      agent,
      requestTimeoutMs: stepTimeoutMs,
      cookies: jar,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const subscribe = async (mailbox: (typeof mailboxes)[number], affinity: boolean): Promise<EwsEnvelope> => {
      const envelope = await postSoap(
        {
          soapAction: SOAP_ACTIONS.Subscribe,
          envelope: buildPullSubscribeRequest({
            folders: mailbox.folders,
            ...(mailbox.subscribeToAllFolders ? { subscribeToAllFolders: true } : {}),
            eventTypes: ['NewMail'],
            timeoutMinutes: 1,
            ...(config.ews.requestServerVersion ? { requestServerVersion: config.ews.requestServerVersion } : {}),
            ...(mailbox.mailbox ? { impersonation: { smtpAddress: mailbox.mailbox } } : {}),
          }),
        },
        {
          ...endpoint,
          ...(mailbox.mailbox ? { mailbox: affinity && anchor ? anchor : mailbox.mailbox } : {}),
          ...(affinity ? { headers: { 'X-PreferServerAffinity': 'true' } } : {}),
        },
      );
      const error = envelopeError(envelope);
      if (error) throw error;
      const message = envelope.body.type === 'response' ? envelope.body.messages[0] : undefined;
      const id = message && 'subscriptionId' in message ? (message as { subscriptionId?: string }).subscriptionId : undefined;
      if (id) {
        await postSoap(
          {
            soapAction: SOAP_ACTIONS.Unsubscribe,
            envelope: buildUnsubscribeRequest({ subscriptionId: id, ...(mailbox.mailbox ? { impersonation: { smtpAddress: mailbox.mailbox } } : {}) }),
          },
          { ...endpoint, ...(mailbox.mailbox ? { mailbox: affinity && anchor ? anchor : mailbox.mailbox } : {}) },
        ).catch(() => undefined);
      }
      return envelope;
    };

    let firstEnvelope: EwsEnvelope | undefined;
    let firstError: unknown;
    try {
      firstEnvelope = await subscribe(first, true);
    } catch (error) {
      firstError = error;
      noteThrottling(error);
    }
    const authFailed = firstError instanceof EwsBridgeError && (firstError.code === 'EWS_AUTH_FAILED' || firstError.code === 'EWS_PEER_MISSING');
    if (authFailed || (firstError !== undefined && !(firstError instanceof EwsResponseError))) {
      const message = firstError instanceof Error ? firstError.message : String(firstError);
      add({
        id: 'auth',
        title: 'Authentication works',
        status: 'fail',
        detail: `${config.ews.auth.type}: ${message}`,
        fix: firstError instanceof EwsBridgeError && firstError.code === 'EWS_PEER_MISSING' ? 'npm install kerberos (with libkrb5-dev)' : authFix(config.ews.auth, message),
      });
      skipRest([['extended-protection', 'Extended Protection'], ['server-version', 'Server version']], 'authentication failed');
      return finish();
    }
    add({ id: 'auth', title: 'Authentication works', status: 'pass', detail: `${config.ews.auth.type} accepted` });

    // Extended Protection: does the server insist on the binding? (NTLM over TLS only: the one case we can probe.)
    add(await extendedProtectionCheck(url, config, agent, stepTimeoutMs, options.signal));

    const version = firstEnvelope?.serverVersion;
    add(
      version
        ? { id: 'server-version', title: 'Server version', status: (version.majorVersion ?? 15) < 14 ? 'fail' : 'pass', detail: versionText(version) }
        : firstEnvelope
          ? { id: 'server-version', title: 'Server version', status: 'warn', detail: 'the response carried no ServerVersionInfo', fix: 'is a proxy rewriting responses?' }
          : { id: 'server-version', title: 'Server version', status: 'skip', detail: 'no successful response to read it from' },
    );

    // 8. every mailbox
    for (const [index, mailbox] of mailboxes.entries()) {
      const name = mailbox.mailbox ?? 'the account\'s own mailbox';
      let error: unknown = index === 0 ? firstError : undefined;
      if (index > 0) {
        try {
          await subscribe(mailbox, false);
        } catch (caught) {
          error = caught;
          noteThrottling(caught);
        }
      }
      const folders = mailbox.subscribeToAllFolders ? 'all folders' : mailbox.folders.map((f) => (typeof f === 'string' ? f : 'id' in f ? `id ${f.id.slice(0, 8)}…` : String(f))).join(', ');
      if (error === undefined) {
        add({ id: `mailbox:${name}`, title: `Mailbox ${name}`, status: 'pass', detail: `${mailbox.mailbox ? 'impersonated' : 'opened'}; folders found: ${folders}` });
      } else {
        const code = error instanceof EwsResponseError ? error.responseCode : undefined;
        add({
          id: `mailbox:${name}`,
          title: `Mailbox ${name}`,
          status: 'fail',
          detail: error instanceof Error ? error.message : String(error),
          fix: (code && (MAILBOX_FIXES[code] ?? THROTTLING_FIXES[code])) ?? 'see the error code in docs/deployment-auth.md',
        });
      }
    }

    // 9. streaming test event
    if (options.sendTestMail) {
      const target = first.mailbox;
      const waitMs = options.testMailTimeoutMs ?? 120_000;
      try {
        const source = streamingSignals({
          url: config.ews.url,
          auth: config.ews.auth,
          ...(target ? { mailbox: target } : {}),
          folders: first.folders,
          ...(tlsSettings ? { tls: tlsSettings } : {}),
          ...(config.ews.requestServerVersion ? { requestServerVersion: config.ews.requestServerVersion } : {}),
        });
        const started = Date.now();
        await firstValueFrom(
          source.pipe(
            tap((signal) => {
              if (signal.type === 'connected') options.onWaitingForMail?.(target ?? '');
            }),
            filter((signal) => signal.type === 'notification' && signal.notification.events.some((e) => e.type !== 'Status')),
            take(1),
            timeout({ first: waitMs }),
          ),
        );
        add({ id: 'streaming', title: 'Streaming delivers an event', status: 'pass', detail: `event received ${Date.now() - started} ms after subscribing` });
      } catch (error) {
        noteThrottling(error);
        add({
          id: 'streaming',
          title: 'Streaming delivers an event',
          status: 'fail',
          detail: error instanceof Error && error.name === 'TimeoutError' ? `no event within ${waitMs / 1000} s` : error instanceof Error ? error.message : String(error),
          fix: 'send a mail to the mailbox while the doctor waits; if none arrives, check that streaming notifications are not blocked by a throttling policy and that nothing between here and Exchange buffers chunked responses',
        });
      }
    } else {
      add({ id: 'streaming', title: 'Streaming delivers an event', status: 'skip', detail: 'run with --send-test-mail to check' });
    }

    // 10. affinity cookie
    const affinityNeeded = config.mode !== 'pull' && (mailboxes.length > 1 || config.ews.anchorMailbox !== undefined);
    const cookie = [...jar.cookies.keys()].find((k) => k.toLowerCase() === 'x-backendoverridecookie');
    add(
      cookie
        ? { id: 'affinity', title: 'Affinity cookie', status: 'pass', detail: 'X-BackEndOverrideCookie set on an anchored Subscribe (Exchange 2013+)' }
        : {
            id: 'affinity',
            title: 'Affinity cookie',
            status: affinityNeeded ? 'warn' : 'pass',
            detail: affinityNeeded ? 'no X-BackEndOverrideCookie came back' : 'not needed (one mailbox, or pull)',
            ...(affinityNeeded ? { fix: 'Exchange 2010 has no affinity (fine); on 2013+ a load balancer may strip the cookie: let it pass, or group mailboxes per server (Autodiscover GroupingInformation)' } : {}),
          },
    );

    // 11. throttling
    add(
      throttled.size === 0
        ? { id: 'throttling', title: 'Throttling', status: 'pass', detail: 'no throttling errors seen' }
        : { id: 'throttling', title: 'Throttling', status: 'fail', detail: [...throttled.keys()].join(', '), fix: [...throttled.values()].join('; ') },
    );
    return finish();
  } finally {
    agent.destroy();
  }
}

/**
 * Whether the server requires the channel binding: for NTLM over https, a second handshake whose
 * binding is zeroed. Refused while the bound one passed: Extended Protection is required (and the
 * bridge satisfies it). Accepted: it is off or "allow".
 */
async function extendedProtectionCheck(url: URL, config: BridgeConfig, base: http.Agent, timeoutMs: number, signal: AbortSignal | undefined): Promise<DoctorCheck> {
  const id = 'extended-protection';
  const title = 'Extended Protection';
  const auth = config.ews.auth;
  if (url.protocol !== 'https:') return { id, title, status: 'skip', detail: 'plain http: no channel to bind to' };
  if (auth.type === 'negotiate') return { id, title, status: 'warn', detail: 'Kerberos: the kerberos package sends no channel binding', fix: 'if the EWS virtual directory requires Extended Protection, Kerberos from this client is refused: use NTLM (which sends the binding) or set it to Allow' };
  if (auth.type !== 'ntlm') return { id, title, status: 'skip', detail: `${auth.type}: no channel binding in this scheme` };
  const inherited = (base as { options?: https.AgentOptions }).options ?? {};
  const agent = new https.Agent({ ...inherited, keepAlive: true, maxSockets: 1 });
  try {
    const negotiate = negotiateMessage();
    const first = await probe(url, agent, timeoutMs, signal, `NTLM ${negotiate.toString('base64')}`);
    const type2 = first.www.map((w) => /^\s*NTLM\s+(\S+)/i.exec(w)?.[1]).find((t) => t !== undefined);
    if (type2 === undefined) return { id, title, status: 'warn', detail: 'could not probe (no NTLM challenge)' };
    const backslash = auth.username.indexOf('\\');
    const user = auth.domain === undefined && backslash > 0 ? auth.username.slice(backslash + 1) : auth.username;
    const challenge = parseChallengeMessage(Buffer.from(type2, 'base64'));
    const domain = auth.domain ?? (backslash > 0 ? auth.username.slice(0, backslash) : auth.username.includes('@') ? '' : challenge.targetName);
    const { message } = authenticateMessage({
      negotiate,
      challenge,
      user,
      domain,
      workstation: auth.workstation ?? 'DOCTOR',
      password: auth.password,
      clientChallenge: randomBytes(8),
      timestamp: fileTimeNow(),
    });
    const second = await probe(url, agent, timeoutMs, signal, `NTLM ${message.toString('base64')}`);
    return second.status === 401
      ? { id, title, status: 'pass', detail: 'required: a logon without the binding is refused, the bridge\'s bound logon is accepted' }
      : { id, title, status: 'pass', detail: 'not required (off or Allow): the bridge sends the binding anyway' };
  } catch (error) {
    return { id, title, status: 'warn', detail: `could not probe: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    agent.destroy();
  }
}

const MARK: Record<CheckStatus, string> = { pass: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** The report as a plain-text table: status, check, what was found; the fix under each failure or warning. */
export function renderTable(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.title.length), 5);
  const lines = report.checks.flatMap((c) => {
    const row = `${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`;
    return c.fix && (c.status === 'fail' || c.status === 'warn') ? [row, `${' '.repeat(6 + width)}fix: ${c.fix}`] : [row];
  });
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  lines.push('', report.ok ? 'All needed checks passed.' : `${failed} check${failed === 1 ? '' : 's'} failed.`);
  return `${lines.join('\n')}\n`;
}
