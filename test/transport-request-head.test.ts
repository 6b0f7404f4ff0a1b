/**
 * The request head postSoap writes, byte for byte. The headers go to node as a flat list of lines
 * (with the Host line node would add itself), which must give exactly the head node wrote when it
 * was given them as an object and set them one by one: same lines, same order, names that differ
 * only in case merged in place; a caller's own Host (or an Expect) still goes the object way.
 */
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createEwsAgent, postSoap, type CookieJar } from '../lib/ews/transport.js';

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

/** A raw TCP server that records each request head and answers 500 (then closes). */
async function recorder(): Promise<{ url: string; heads: string[] }> {
  const heads: string[] = [];
  const server = createServer((socket) => {
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      heads.push(text.slice(0, end));
      text = '';
      socket.end('HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/EWS/Exchange.asmx?q=1`, heads };
}

const REQUEST = { soapAction: 'http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe', envelope: '<x>é</x>' };

describe('postSoap request head', () => {
  it('writes the same lines in the same order with or without caller headers', async () => {
    const { url, heads } = await recorder();
    const agent = createEwsAgent({ url });
    const cookies: CookieJar = { cookieHeader: () => 'X-BackEndOverrideCookie=MBX01~1', storeSetCookie: () => undefined };
    const base = { url, agent, auth: { type: 'basic', username: 'svc@contoso.com', password: 'pw' } as const, mailbox: 'room@contoso.com', cookies };
    await postSoap(REQUEST, base).catch(() => undefined);
    await postSoap(REQUEST, { ...base, headers: { 'X-Extra': '1' } }).catch(() => undefined);
    await postSoap(REQUEST, { ...base, headers: {} }).catch(() => undefined);
    agent.destroy();
    expect(heads).toHaveLength(3);
    const host = new URL(url).host;
    const expected = [
      'POST /EWS/Exchange.asmx?q=1 HTTP/1.1',
      'Content-Type: text/xml; charset=utf-8',
      'Accept: text/xml',
      'Accept-Encoding: identity',
      'SOAPAction: "http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe"',
      'X-AnchorMailbox: room@contoso.com',
      'Cookie: X-BackEndOverrideCookie=MBX01~1',
      `Authorization: Basic ${Buffer.from('svc@contoso.com:pw').toString('base64')}`,
      `Content-Length: ${Buffer.byteLength(REQUEST.envelope)}`,
      `Host: ${host}`,
      'Connection: keep-alive',
    ];
    expect(heads[0]!.split('\r\n')).toEqual(expected);
    expect(heads[2]).toBe(heads[0]);
    // The general path: the caller's header where node puts it, everything else the same.
    expect(heads[1]!.split('\r\n').filter((line) => line !== 'X-Extra: 1')).toEqual(expected);
  });

  it('merges caller headers as node does: case-insensitive names replaced in place, the reserved two dropped', async () => {
    const { url, heads } = await recorder();
    const agent = createEwsAgent({ url });
    const host = new URL(url).host;
    const call = (headers: Record<string, string>): Promise<unknown> => postSoap(REQUEST, { url, agent, headers }).catch(() => undefined);
    await call({ 'content-type': 'text/plain', 'X-A': '1', 'x-a': '2' });
    await call({ authorization: 'Basic c3RyYXk=', 'content-length': '5', 'X-B': '2' });
    await call({ Connection: 'close' });
    await call({ Host: 'mail.contoso.com' });
    agent.destroy();
    const soapAction = 'SOAPAction: "http://schemas.microsoft.com/exchange/services/2006/messages/Subscribe"';
    const length = `Content-Length: ${Buffer.byteLength(REQUEST.envelope)}`;
    const start = 'POST /EWS/Exchange.asmx?q=1 HTTP/1.1';
    expect(heads.map((head) => head.split('\r\n'))).toEqual([
      [start, 'content-type: text/plain', 'Accept: text/xml', 'Accept-Encoding: identity', soapAction, 'x-a: 2', length, `Host: ${host}`, 'Connection: keep-alive'],
      [start, 'Content-Type: text/xml; charset=utf-8', 'Accept: text/xml', 'Accept-Encoding: identity', soapAction, 'X-B: 2', length, `Host: ${host}`, 'Connection: keep-alive'],
      [start, 'Content-Type: text/xml; charset=utf-8', 'Accept: text/xml', 'Accept-Encoding: identity', soapAction, 'Connection: close', length, `Host: ${host}`],
      [start, 'Content-Type: text/xml; charset=utf-8', 'Accept: text/xml', 'Accept-Encoding: identity', soapAction, 'Host: mail.contoso.com', length, 'Connection: keep-alive'],
    ]);
  });

  it('refuses a header value node refuses, on either path', async () => {
    const { url } = await recorder();
    const agent = createEwsAgent({ url });
    await expect(postSoap(REQUEST, { url, agent, mailbox: 'bad\r\nInjected: 1' })).rejects.toThrow(/Invalid character/);
    await expect(postSoap(REQUEST, { url, agent, mailbox: 'bad\r\nInjected: 1', headers: { Host: 'mail.contoso.com' } })).rejects.toThrow(/Invalid character/);
    await expect(postSoap(REQUEST, { url, agent, headers: { 'Bad Name': '1' } })).rejects.toThrow(/Header name must be a valid HTTP token/);
    agent.destroy();
  });
});
