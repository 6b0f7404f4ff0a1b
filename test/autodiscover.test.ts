/**
 * Autodiscover (issue 16) against EwsSimulator's Autodiscover: SOAP GetUserSettings in batches, the
 * POX fallback, every kind of redirect under the safety limits (https only, hop limit, loops,
 * approval for another domain), NTLM over TLS, and grouping mailboxes per server.
 */
import https from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import type { EwsAutodiscoverError } from '../lib/errors.js';
import { autodiscover, groupMailboxesByServer, type AutodiscoverOutcome, type AutodiscoverRedirect, type AutodiscoverResult } from '../lib/ews/autodiscover.js';
import { EwsSimulator, type EwsSimulatorOptions } from '../lib/testing/index.js';
import { opensslAvailable } from './helpers/capture-listener.js';
import { makeSelfSignedCert } from './helpers/test-certs.js';

const sims: EwsSimulator[] = [];
afterEach(async () => {
  for (const sim of sims.splice(0)) await sim.close();
});
async function start(options: EwsSimulatorOptions = {}): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start(options);
  sims.push(sim);
  return sim;
}
const svc = (sim: EwsSimulator, host = '127.0.0.1'): string => sim.url.replace('/EWS/Exchange.asmx', '/autodiscover/autodiscover.svc').replace('127.0.0.1', host);
const BASIC = { type: 'basic', username: 'svc@contoso.com', password: 'x' } as const;

function ok(outcomes: AutodiscoverOutcome[]): AutodiscoverResult[] {
  return outcomes.map((o) => {
    if (!o.ok) throw o.error;
    return o.result;
  });
}
function failure(outcome: AutodiscoverOutcome | undefined): EwsAutodiscoverError {
  if (outcome === undefined || outcome.ok) throw new Error('expected a failure');
  return outcome.error;
}

describe('Autodiscover against EwsSimulator', () => {
  it('SOAP GetUserSettings: EWS URLs and GroupingInformation for many mailboxes in one request, then grouped per server', async () => {
    const sim = await start({
      autodiscover: {
        users: {
          'a@contoso.com': { externalEwsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', internalEwsUrl: 'https://mbx1.corp/EWS/Exchange.asmx', groupingInformation: 'MBX1' },
          'b@contoso.com': { externalEwsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', groupingInformation: 'MBX2' },
          'c@contoso.com': { externalEwsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', internalEwsUrl: 'https://mbx1.corp/EWS/Exchange.asmx', groupingInformation: 'MBX1' },
        },
      },
    });
    const results = ok(await autodiscover({ mailboxes: ['a@contoso.com', 'b@contoso.com', 'c@contoso.com'], url: svc(sim), auth: BASIC, allowHttp: true }));
    expect(results.map((r) => [r.mailbox, r.ewsUrl, r.groupingInformation, r.protocol, r.redirects])).toEqual([
      ['a@contoso.com', 'https://mail.contoso.com/EWS/Exchange.asmx', 'MBX1', 'soap', 0],
      ['b@contoso.com', 'https://mail.contoso.com/EWS/Exchange.asmx', 'MBX2', 'soap', 0],
      ['c@contoso.com', 'https://mail.contoso.com/EWS/Exchange.asmx', 'MBX1', 'soap', 0],
    ]);
    expect(results[0]!.internalEwsUrl).toBe('https://mbx1.corp/EWS/Exchange.asmx');
    expect(sim.autodiscoverRequests).toEqual({ soap: 1, pox: 0 });
    const internal = ok(await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(sim), auth: BASIC, allowHttp: true, prefer: 'internal' }));
    expect(internal[0]!.ewsUrl).toBe('https://mbx1.corp/EWS/Exchange.asmx');
    expect(groupMailboxesByServer(results)).toEqual([
      { ewsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', groupingInformation: 'MBX1', anchorMailbox: 'a@contoso.com', mailboxes: ['a@contoso.com', 'c@contoso.com'] },
      { ewsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', groupingInformation: 'MBX2', anchorMailbox: 'b@contoso.com', mailboxes: ['b@contoso.com'] },
    ]);
  });

  it('the default answer points at the simulator itself, and a wrong password is an auth failure, not a retry loop', async () => {
    const sim = await start({ users: { 'svc@contoso.com': 'x' } });
    const [result] = ok(await autodiscover({ mailboxes: ['room1@contoso.com'], url: svc(sim), auth: BASIC, allowHttp: true }));
    expect(result).toMatchObject({ ewsUrl: sim.url, groupingInformation: 'SIM-MBX01' });
    const bad = await autodiscover({ mailboxes: ['room1@contoso.com'], url: svc(sim), auth: { ...BASIC, password: 'no' }, allowHttp: true });
    expect(failure(bad[0])).toMatchObject({ code: 'EWS_AUTODISCOVER_FAILED', retriable: false, mailbox: 'room1@contoso.com' });
    expect(failure(bad[0]).message).toMatch(/HTTP 401/);
  });

  it('falls back to POX when the SOAP service is missing (no GroupingInformation there)', async () => {
    const sim = await start({ autodiscover: { soap: false, users: { 'a@contoso.com': { externalEwsUrl: 'https://ext/EWS/Exchange.asmx', internalEwsUrl: 'https://int/EWS/Exchange.asmx' } } } });
    const [result] = ok(await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(sim), auth: BASIC, allowHttp: true }));
    expect(result).toMatchObject({ ewsUrl: 'https://ext/EWS/Exchange.asmx', internalEwsUrl: 'https://int/EWS/Exchange.asmx', groupingInformation: undefined, protocol: 'pox' });
    expect(sim.autodiscoverRequests).toEqual({ soap: 0, pox: 1 });
  });

  it('follows a RedirectAddress inside the domain; asks before following one to another domain', async () => {
    const sim = await start({
      autodiscover: {
        users: {
          'old@contoso.com': { redirectAddress: 'new@contoso.com' },
          'new@contoso.com': { externalEwsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', groupingInformation: 'G' },
          'hybrid@contoso.com': { redirectAddress: 'hybrid@contoso.mail.onmicrosoft.com' },
          'hybrid@contoso.mail.onmicrosoft.com': { externalEwsUrl: 'https://outlook.office365.com/EWS/Exchange.asmx' },
        },
      },
    });
    const base = { url: svc(sim), auth: BASIC, allowHttp: true };
    const [moved] = ok(await autodiscover({ ...base, mailboxes: ['old@contoso.com'] }));
    expect(moved).toMatchObject({ mailbox: 'old@contoso.com', ewsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx', redirects: 1 });

    const refused = await autodiscover({ ...base, mailboxes: ['hybrid@contoso.com'] });
    expect(failure(refused[0]).message).toMatch(/another domain \(hybrid@contoso\.mail\.onmicrosoft\.com\) and approveRedirect did not allow it/);
    const asked: AutodiscoverRedirect[] = [];
    const [approved] = ok(await autodiscover({ ...base, mailboxes: ['hybrid@contoso.com'], approveRedirect: (r) => (asked.push(r), true) }));
    expect(approved!.ewsUrl).toBe('https://outlook.office365.com/EWS/Exchange.asmx');
    expect(asked.map((r) => [r.mailbox, r.to])).toEqual([['hybrid@contoso.com', 'hybrid@contoso.mail.onmicrosoft.com']]);
  });

  it('RedirectUrl and HTTP 302: followed on the same host, approval needed for another host outside the domain', async () => {
    const target = await start({ autodiscover: { users: { 'a@contoso.com': { externalEwsUrl: 'https://two/EWS/Exchange.asmx', groupingInformation: 'TWO' } } } });
    const byUrl = await start({ autodiscover: { users: { 'a@contoso.com': { redirectUrl: svc(target) } } } });
    const by302 = await start({ autodiscover: { httpRedirect: svc(target) } });
    for (const first of [byUrl, by302]) {
      const [result] = ok(await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(first), auth: BASIC, allowHttp: true }));
      expect(result).toMatchObject({ ewsUrl: 'https://two/EWS/Exchange.asmx', redirects: 1 });
    }
    // Reached as "localhost", the redirect to 127.0.0.1 is another host outside contoso.com.
    const refused = await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(byUrl, 'localhost'), auth: BASIC, allowHttp: true });
    expect(failure(refused[0]).message).toMatch(/another domain/);
    expect(target.autodiscoverRequests.soap).toBe(2);
  });

  it('https only: a plain-http endpoint or a redirect to one is refused unless allowHttp', async () => {
    const sim = await start();
    const outcome = await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(sim), auth: BASIC });
    expect(failure(outcome[0]).message).toMatch(/only https is allowed/);
    expect(sim.autodiscoverRequests.soap).toBe(0);
  });

  it('stops after maxRedirects hops, and on a loop', async () => {
    const sim = await start({
      autodiscover: {
        users: {
          'a@contoso.com': { redirectAddress: 'b@contoso.com' },
          'b@contoso.com': { redirectAddress: 'c@contoso.com' },
          'c@contoso.com': { redirectAddress: 'a@contoso.com' },
        },
      },
    });
    const base = { url: svc(sim), auth: BASIC, allowHttp: true, mailboxes: ['a@contoso.com'] };
    expect(failure((await autodiscover({ ...base, maxRedirects: 1 }))[0]).message).toMatch(/gave up after 1 redirects/);
    expect(failure((await autodiscover(base))[0]).message).toMatch(/loop/);
  });

  it('an unknown user is that mailbox\'s failure only', async () => {
    const sim = await start({ autodiscover: { users: { 'ghost@contoso.com': { error: 'InvalidUser' } } } });
    const outcomes = await autodiscover({ mailboxes: ['ghost@contoso.com', 'real@contoso.com'], url: svc(sim), auth: BASIC, allowHttp: true });
    expect(failure(outcomes[0]).message).toMatch(/InvalidUser/);
    expect(outcomes[1]).toMatchObject({ ok: true, result: { mailbox: 'real@contoso.com' } });
  });

  it('validates its options', async () => {
    await expect(autodiscover({ mailboxes: [] })).rejects.toThrow(/^mailboxes must be a non-empty array of SMTP addresses \(got an empty array\)$/);
    await expect(autodiscover({ mailboxes: ['a@b.c', 'nobody'] })).rejects.toThrow(/^mailboxes\[1\] must be an SMTP address \(user@domain\) \(got "nobody"\)$/);
    await expect(autodiscover({ mailboxes: ['a@b.c'], maxRedirects: -1 })).rejects.toThrow(/^maxRedirects must be 0–50 \(got -1\)$/);
    await expect(autodiscover({ mailboxes: ['a@b.c'], prefer: 'dmz' as never })).rejects.toThrow(/^prefer must be "external" or "internal" \(got "dmz"\)$/);
  });

  it.skipIf(!opensslAvailable())('over TLS with NTLM (and Extended Protection required)', async () => {
    const cert = makeSelfSignedCert();
    const sim = await start({ tls: { key: cert.key, cert: cert.cert }, extendedProtection: 'require', authSchemes: ['NTLM'], users: { 'CONTOSO\\svc': 'pw' } });
    const agent = new https.Agent({ ca: cert.cert });
    const [result] = ok(await autodiscover({ mailboxes: ['a@contoso.com'], url: svc(sim), auth: { type: 'ntlm', username: 'CONTOSO\\svc', password: 'pw' }, agent }));
    expect(result!.ewsUrl).toBe(sim.url);
  }, 30_000);
});

describe('groupMailboxesByServer', () => {
  it('splits a server\'s mailboxes into groups of at most 200, each with its anchor', () => {
    const results: AutodiscoverResult[] = Array.from({ length: 450 }, (_, i) => ({
      mailbox: `room${i}@contoso.com`, ewsUrl: 'https://mail/EWS/Exchange.asmx', externalEwsUrl: undefined, internalEwsUrl: undefined,
      groupingInformation: i % 2 === 0 ? 'EVEN' : 'ODD', protocol: 'soap', redirects: 0,
    }));
    const groups = groupMailboxesByServer(results);
    expect(groups.map((g) => [g.groupingInformation, g.mailboxes.length, g.anchorMailbox])).toEqual([
      ['EVEN', 200, 'room0@contoso.com'],
      ['EVEN', 25, 'room400@contoso.com'],
      ['ODD', 200, 'room1@contoso.com'],
      ['ODD', 25, 'room401@contoso.com'],
    ]);
    expect(() => groupMailboxesByServer(results, { maxPerGroup: 201 })).toThrow(/^maxPerGroup must be 1–200 \(got 201\)$/);
  });
});
