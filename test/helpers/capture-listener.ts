/**
 * A push listener for forwarder tests on 127.0.0.1: records every request exactly as it arrived
 * (raw header lines and body) and answers as the test says — a SendNotificationResult, an error
 * status, a redirect, garbage, or nothing at all.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parseEnvelope } from '../../lib/ews/parser.js';
import { buildSendNotificationResult } from '../../lib/ews/send-notification.js';
import { sequenceOf } from '../../lib/testing/index.js';

export interface CapturedPost {
  readonly method: string;
  readonly path: string;
  /** Header lines as sent, names in their original case. */
  readonly rawHeaders: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** https only: the subject CN of the client certificate, when one was presented and verified. */
  readonly clientCertCN: string | undefined;
}

export type ListenerAnswer =
  | { readonly status?: number; readonly body?: string; readonly headers?: Readonly<Record<string, string>> }
  | 'OK'
  | 'Unsubscribe'
  | 'hang';

export interface CaptureListener {
  readonly url: string;
  readonly posts: CapturedPost[];
  /** Every request as received (request line, header lines as sent, body), for grepping. */
  readonly rawText: () => string;
  close(): Promise<void>;
}

export interface CaptureListenerOptions {
  readonly answer?: (post: CapturedPost, index: number) => ListenerAnswer;
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca?: string; readonly requestCert?: boolean };
  readonly path?: string;
}

export async function startCaptureListener(options: CaptureListenerOptions = {}): Promise<CaptureListener> {
  const posts: CapturedPost[] = [];
  const sockets = new Set<Socket>();
  const answer = options.answer ?? (() => 'OK');
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const socket = req.socket as Partial<TLSSocket>;
      const peer = typeof socket.getPeerCertificate === 'function' && socket.authorized ? socket.getPeerCertificate() : undefined;
      const post: CapturedPost = {
        method: req.method ?? '',
        path: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        clientCertCN: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : undefined,
      };
      posts.push(post);
      const a = answer(post, posts.length - 1);
      if (a === 'hang') return;
      if (a === 'OK' || a === 'Unsubscribe') {
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(buildSendNotificationResult(a));
        return;
      }
      res.writeHead(a.status ?? 200, { 'Content-Type': 'text/xml; charset=utf-8', ...a.headers }).end(a.body ?? '');
    });
  };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, requestCert: options.tls.requestCert ?? false, rejectUnauthorized: false }, onRequest)
    : http.createServer(onRequest);
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}${options.path ?? '/ExchangePush/Listener.asmx'}`,
    posts,
    rawText: () =>
      posts
        .map((p) => {
          const lines = [`${p.method} ${p.path}`];
          for (let i = 0; i + 1 < p.rawHeaders.length; i += 2) lines.push(`${p.rawHeaders[i]}: ${p.rawHeaders[i + 1]}`);
          return `${lines.join('\r\n')}\r\n\r\n${p.body}`;
        })
        .join('\n'),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Whether the `openssl` command is there (the mTLS test makes its certificates with it). */
export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface TestPki {
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (CN=ews-push-bridge). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ews-pki-'));
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  try {
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca');
    for (const [name, cn, ext] of [
      ['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
      ['client', 'ews-push-bridge', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      const extFile = join(dir, `${name}.ext`);
      execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > '${extFile}'`]);
      run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', extFile);
    }
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    return { caCert: read('ca.crt'), serverKey: read('server.key'), serverCert: read('server.crt'), clientKey: read('client.key'), clientCert: read('client.crt') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The simulator's sequence numbers of every event the listener received, by mailbox, in arrival
 * order (repeats kept). `mailboxOf` maps the SubscriptionId of each SendNotification to its mailbox
 * (from `sim.subscriptions`); an unknown one counts under `'?'`.
 */
export function receivedSequences(listener: CaptureListener, mailboxOf: ReadonlyMap<string, string>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const post of listener.posts) {
    const body = parseEnvelope(post.body).body;
    if (body.type !== 'response') continue;
    for (const message of body.messages) {
      if (message.kind !== 'SendNotification' || !message.notification) continue;
      const mailbox = mailboxOf.get(message.notification.subscriptionId) ?? '?';
      for (const event of message.notification.events) {
        const seq = sequenceOf(event);
        if (seq !== undefined) out.set(mailbox, [...(out.get(mailbox) ?? []), seq]);
      }
    }
  }
  return out;
}
