/**
 * The demo's legacy push listener: what a 2015 line-of-business app exposed for Exchange to POST
 * to. A plain HTTP endpoint that reads each `SendNotification` envelope, hands its notification to
 * the app, and answers `SendNotificationResult` `OK` — nothing in it knows about the bridge.
 *
 * @packageDocumentation
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { buildSendNotificationResult, parseEnvelope, type PushNotification } from '../index.js';

/** Options of {@link startLegacyListener}. */
export interface LegacyListenerOptions {
  /** Called with each notification received, before the answer is sent. Required. */
  readonly onNotification: (notification: PushNotification, receivedAt: number) => void;
  /** Called with requests that were not a SendNotification (answered 400). Default: ignored. */
  readonly onBadRequest?: (reason: string) => void;
  /** Largest body accepted. Default `4_194_304`. */
  readonly maxBodyBytes?: number;
}

/** A running listener. */
export interface LegacyListener {
  /** The URL to give Subscribe (or the soap-forwarder), e.g. `http://127.0.0.1:PORT/ExchangePush/Listener.asmx`. */
  readonly url: string;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

const PATH = '/ExchangePush/Listener.asmx';

/** Starts a push listener on 127.0.0.1 on a free port. */
export async function startLegacyListener(options: LegacyListenerOptions): Promise<LegacyListener> {
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const sockets = new Set<Socket>();
  const refuse = (res: http.ServerResponse, status: number, reason: string): void => {
    options.onBadRequest?.(reason);
    res.writeHead(status, { 'Content-Type': 'text/plain' }).end(`${reason}\n`);
  };
  const server = http.createServer((req, res) => {
    res.on('error', () => undefined);
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== PATH) {
      refuse(res, 404, 'Not a push endpoint');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      const receivedAt = performance.now();
      if (size > maxBodyBytes) {
        refuse(res, 413, 'Too large');
        return;
      }
      let notification: PushNotification | undefined;
      try {
        const envelope = parseEnvelope(Buffer.concat(chunks));
        const message = envelope.body.type === 'response' ? envelope.body.messages[0] : undefined;
        notification = message?.kind === 'SendNotification' ? message.notification : undefined;
      } catch (error) {
        refuse(res, 400, `Not a SOAP envelope (${error instanceof Error ? error.message : 'unreadable'})`);
        return;
      }
      if (notification === undefined) {
        refuse(res, 400, 'Not a SendNotification');
        return;
      }
      options.onNotification(notification, receivedAt);
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(buildSendNotificationResult('OK'));
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}${PATH}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}
