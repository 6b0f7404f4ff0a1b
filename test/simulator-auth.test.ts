/**
 * EwsSimulator identity: Basic (open and strict), Bearer, the NTLM handshake on one keep-alive
 * socket, impersonation rights, mailbox creation, affinity (X-BackEndOverrideCookie) and limits.
 */
import { Agent } from 'node:http';
import ntlmClient from '@ewsjs/ntlm-client';
import { afterEach, describe, expect, it } from 'vitest';
import { EwsSimulator } from '../lib/testing/index.js';
import { basic, call, envelope, firstMessage, headerLines, impersonating, openStream, post, req } from './helpers/ews-http.js';

let sim: EwsSimulator | undefined;
const agents: Agent[] = [];
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  for (const a of agents.splice(0)) a.destroy();
});

function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

const SIG = Buffer.from('NTLMSSP\0', 'latin1');

function type1(): string {
  const b = Buffer.alloc(32);
  SIG.copy(b);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(0x00088207, 12);
  return `NTLM ${b.toString('base64')}`;
}

/** A structurally valid NTLMv2-sized Type 3 message whose proof is garbage (refused when `users` is set). */
function type3(user: string, domain = 'CONTOSO'): string {
  const payload = [Buffer.alloc(24, 1), Buffer.alloc(48, 2), Buffer.from(domain, 'utf16le'), Buffer.from(user, 'utf16le'), Buffer.from('WS01', 'utf16le')];
  const head = Buffer.alloc(64);
  SIG.copy(head);
  head.writeUInt32LE(3, 8);
  let offset = 64;
  payload.forEach((p, i) => {
    head.writeUInt16LE(p.length, 12 + i * 8);
    head.writeUInt16LE(p.length, 14 + i * 8);
    head.writeUInt32LE(offset, 16 + i * 8);
    offset += p.length;
  });
  head.writeUInt32LE(0x1 | 0x200 | 0x80000, 60);
  return `NTLM ${Buffer.concat([head, ...payload]).toString('base64')}`;
}

describe('Basic and Bearer', () => {
  it('zero-config: any Basic credentials work, and a request without any gets 401 with the offered schemes', async () => {
    sim = await EwsSimulator.start();
    const anonymous = await post(sim.url, envelope(req.subscribePull()), { auth: null });
    expect(anonymous.status).toBe(401);
    expect(headerLines(anonymous, 'WWW-Authenticate')).toEqual(['Basic realm="127.0.0.1"', 'NTLM']);
    const ok = await post(sim.url, envelope(req.subscribePull()), { auth: basic('whoever', 'anything') });
    expect(ok.status).toBe(200);
    expect(sim.requests.at(-1)).toMatchObject({ user: 'whoever', mailbox: 'whoever' });
  });

  it('strict users: a wrong password or unknown user gets 401', async () => {
    sim = await EwsSimulator.start({ users: { 'alice@contoso.com': 'pa55' } });
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: basic('alice@contoso.com', 'nope') })).status).toBe(401);
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: basic('mallory@contoso.com', 'pa55') })).status).toBe(401);
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: basic('Alice@Contoso.com', 'pa55') })).status).toBe(200);
  });

  it('Bearer: the callback decides; an app token must impersonate', async () => {
    sim = await EwsSimulator.start({ verifyToken: (t) => (t === 'app-token' ? true : t === 'user-token' ? 'bob@contoso.com' : false) });
    expect(headerLines(await post(sim.url, envelope(req.subscribePull()), { auth: null }), 'WWW-Authenticate')).toEqual(['Basic realm="127.0.0.1"', 'NTLM', 'Bearer']);
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: 'Bearer bad' })).status).toBe(401);
    const asUser = await call(sim.url, req.subscribePull(), { auth: 'Bearer user-token' });
    expect(asUser.answer.status).toBe(200);
    expect(sim.requests.at(-1)?.mailbox).toBe('bob@contoso.com');
    const appAlone = await call(sim.url, req.subscribePull(), { auth: 'Bearer app-token' });
    expect(appAlone.envelope.body).toMatchObject({ type: 'fault', fault: { responseCode: 'ErrorInvalidExchangeImpersonationHeaderData' } });
    const appImpersonating = await call(sim.url, req.subscribePull(), { auth: 'Bearer app-token', header: impersonating('carol@contoso.com') });
    expect(appImpersonating.answer.status).toBe(200);
    expect(sim.requests.at(-1)?.mailbox).toBe('carol@contoso.com');
  });

  it('a throwing token checker is a refusal, not a crash', async () => {
    sim = await EwsSimulator.start({
      verifyToken: () => {
        throw new Error('token service down');
      },
    });
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: 'Bearer x' })).status).toBe(401);
  });
});

describe('NTLM handshake', () => {
  it('Type 1 → 401 with a Type 2 challenge → Type 3 on the same socket → authenticated socket', async () => {
    sim = await EwsSimulator.start({ users: { 'CONTOSO\\alice': 'pa55' } });
    const agent = keepAliveAgent();
    const challenge = await post(sim.url, envelope(req.subscribePull()), { auth: type1(), agent });
    expect(challenge.status).toBe(401);
    const header = String(challenge.headers['www-authenticate']);
    expect(header).toMatch(/^NTLM [A-Za-z0-9+/]+=*$/);
    const t2 = Buffer.from(header.slice(5), 'base64');
    expect(t2.subarray(0, 8).equals(SIG)).toBe(true);
    expect(t2.readUInt32LE(8)).toBe(2);
    expect(t2.subarray(24, 32).length).toBe(8); // the server challenge
    // A real NTLMv2 answer: with `users` set, the simulator checks the proof against the password.
    const answer = ntlmClient.createType3Message(ntlmClient.decodeType2Message(header), 'alice', 'pa55', 'WS01', 'CONTOSO');
    const done = await post(sim.url, envelope(req.subscribePull()), { auth: answer, agent });
    expect(done.status).toBe(200);
    expect(sim.requests.at(-1)).toMatchObject({ user: 'CONTOSO\\alice' });
    // NTLM authenticates the connection: later requests on it need no header.
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: null, agent })).status).toBe(200);
  });

  it('refuses a Type 3 on another socket, a malformed one, and an unknown user', async () => {
    sim = await EwsSimulator.start({ users: { alice: 'pa55' } });
    await post(sim.url, envelope(req.subscribePull()), { auth: type1(), agent: keepAliveAgent() });
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: type3('alice'), agent: keepAliveAgent() })).status).toBe(401);
    const agent = keepAliveAgent();
    await post(sim.url, envelope(req.subscribePull()), { auth: type1(), agent });
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: 'NTLM ' + Buffer.from('NTLMSSP\0garbage').toString('base64'), agent })).status).toBe(401);
    await post(sim.url, envelope(req.subscribePull()), { auth: type1(), agent });
    expect((await post(sim.url, envelope(req.subscribePull()), { auth: type3('mallory'), agent })).status).toBe(401);
  });
});

describe('impersonation and mailboxes', () => {
  it('impersonation targets the named mailbox; rights are enforced when configured', async () => {
    sim = await EwsSimulator.start({ impersonation: { 'svc@contoso.com': ['alice@contoso.com'] } });
    const ok = await call(sim.url, req.subscribePull(), { auth: basic('svc@contoso.com'), header: impersonating('Alice@Contoso.com') });
    expect(ok.answer.status).toBe(200);
    expect(sim.subscriptions[0]).toMatchObject({ mailbox: 'alice@contoso.com', owner: 'svc@contoso.com' });
    const denied = await call(sim.url, req.subscribePull(), { auth: basic('svc@contoso.com'), header: impersonating('bob@contoso.com') });
    expect(denied.answer.status).toBe(500);
    expect(denied.envelope.body).toMatchObject({ type: 'fault', fault: { responseCode: 'ErrorImpersonateUserDenied' } });
  });

  it('events delivered to an impersonated mailbox reach the impersonating subscriber', async () => {
    sim = await EwsSimulator.start();
    const message = firstMessage((await call(sim.url, req.subscribePull(), { auth: basic('svc'), header: impersonating('alice@contoso.com') })).envelope);
    if (message.kind !== 'Subscribe') throw new Error('unexpected');
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    const events = firstMessage((await call(sim.url, req.getEvents(message.subscriptionId!, message.watermark!), { auth: basic('svc') })).envelope);
    expect(events.kind === 'GetEvents' && events.notification?.events[0]?.type).toBe('NewMail');
    // Another account may not read it.
    const stranger = firstMessage((await call(sim.url, req.getEvents(message.subscriptionId!, message.watermark!), { auth: basic('eve') })).envelope);
    expect(stranger.responseCode).toBe('ErrorSubscriptionAccessDenied');
  });

  it('autoCreateMailboxes: false → ErrorNonExistentMailbox for unknown mailboxes', async () => {
    sim = await EwsSimulator.start({ autoCreateMailboxes: false, mailboxes: ['alice@contoso.com'] });
    expect((await call(sim.url, req.subscribePull(), { auth: basic('alice@contoso.com') })).answer.status).toBe(200);
    const missing = await call(sim.url, req.subscribePull(), { auth: basic('alice@contoso.com'), header: impersonating('nobody@contoso.com') });
    expect(missing.envelope.body).toMatchObject({ type: 'fault', fault: { responseCode: 'ErrorNonExistentMailbox' } });
  });

  it('subscribing to another mailbox through a delegate folder id is refused, as on Exchange', async () => {
    sim = await EwsSimulator.start();
    const body = `<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>bob@contoso.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`;
    const message = firstMessage((await call(sim.url, body)).envelope);
    expect(message).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorSubscriptionDelegateAccessNotSupported' });
  });
});

describe('affinity', () => {
  const anchored = { 'X-AnchorMailbox': 'alice@contoso.com', 'X-PreferServerAffinity': 'true' };

  it('an anchored Subscribe sets X-BackEndOverrideCookie; later calls without it get ErrorSubscriptionNotFound', async () => {
    sim = await EwsSimulator.start({ affinity: true });
    const { answer, envelope: env } = await call(sim.url, req.subscribeStreaming(), { headers: anchored });
    const cookie = String(answer.headers['set-cookie']?.[0] ?? '');
    expect(cookie).toMatch(/^X-BackEndOverrideCookie=[^;]+; path=\//);
    const id = (firstMessage(env) as { subscriptionId: string }).subscriptionId;
    const pair = cookie.split(';')[0]!;

    const without = openStream(sim.url, [id], { headers: anchored });
    await without.finished();
    expect(without.messages[0]).toMatchObject({ responseCode: 'ErrorSubscriptionNotFound', errorSubscriptionIds: [id], connectionStatus: 'Closed' });

    const withCookie = openStream(sim.url, [id], { headers: { ...anchored, Cookie: pair } });
    sim.deliver('alice@contoso.com', { type: 'NewMail' });
    await withCookie.waitFor((e) => e.length >= 1, 'the event');
    expect(withCookie.messages[0]!.notifications).toHaveLength(1);
    withCookie.abort();
    expect(sim.subscriptions[0]?.backendCookie).toBe(pair.slice('X-BackEndOverrideCookie='.length));
  });

  it('a Subscribe without the anchor headers sets no cookie, so its subscription is unreachable', async () => {
    sim = await EwsSimulator.start({ affinity: true });
    const { answer, envelope: env } = await call(sim.url, req.subscribePull());
    expect(answer.headers['set-cookie']).toBeUndefined();
    const sub = firstMessage(env) as { subscriptionId: string; watermark: string };
    const events = firstMessage((await call(sim.url, req.getEvents(sub.subscriptionId, sub.watermark))).envelope);
    expect(events.responseCode).toBe('ErrorSubscriptionNotFound');
  });
});

describe('limits', () => {
  it('maxSubscriptionsPerUser → ErrorExceededSubscriptionCount', async () => {
    sim = await EwsSimulator.start({ maxSubscriptionsPerUser: 2 });
    for (let i = 0; i < 2; i++) expect(firstMessage((await call(sim.url, req.subscribeStreaming())).envelope).responseCode).toBe('NoError');
    expect(firstMessage((await call(sim.url, req.subscribeStreaming())).envelope)).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorExceededSubscriptionCount' });
  });

  it('maxStreamingConnectionsPerMailbox → ErrorExceededConnectionCount for one connection too many', async () => {
    sim = await EwsSimulator.start({ maxStreamingConnectionsPerMailbox: 1 });
    const a = (firstMessage((await call(sim.url, req.subscribeStreaming())).envelope) as { subscriptionId: string }).subscriptionId;
    const b = (firstMessage((await call(sim.url, req.subscribeStreaming())).envelope) as { subscriptionId: string }).subscriptionId;
    const first = openStream(sim.url, [a]);
    await new Promise((r) => setTimeout(r, 30));
    const second = openStream(sim.url, [b]);
    await second.finished();
    expect(second.messages[0]).toMatchObject({ responseClass: 'Error', responseCode: 'ErrorExceededConnectionCount' });
    first.abort();
  });
});
