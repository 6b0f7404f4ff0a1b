/**
 * The demo's legacy app: the 2015 push listener and CRM of `examples/legacy-listener/`, run exactly
 * as they are, with the CRM watched so the demo sees every event as it is filed.
 *
 * @packageDocumentation
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Crm, type MailEvent } from '../examples/legacy-listener/crm.js';
import { startListener } from '../examples/legacy-listener/listener-2015.js';
import type { NotificationEvent } from '../lib/index.js';
import { sequenceOf } from '../lib/testing/index.js';

/** The example CRM, watched: the demo learns of every event the 2015 listener files, as it files it. */
export class WatchedCrm extends Crm {
  constructor(private readonly onFiled: (event: MailEvent, at: number) => void) {
    super();
  }

  override file(event: MailEvent): void {
    super.file(event);
    this.onFiled(event, performance.now());
  }
}

/** The simulator's sequence number of a filed event, read back from its change key (see `sequenceOf`). */
export function sequenceOfFiled(event: MailEvent): number | undefined {
  const id = { id: event.id, ...(event.changeKey === undefined ? {} : { changeKey: event.changeKey }) };
  const wire: NotificationEvent = { type: 'Created', timeStamp: '', parentFolderId: { id: '' }, ...(event.kind === 'item' ? { itemId: id } : { folderId: id }) };
  return sequenceOf(wire);
}

/** A running 2015 listener (examples/legacy-listener, unchanged). */
export interface DemoListener {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the 2015 listener on `host` (default 127.0.0.1) and `port` (default 0: a free one), filing into `crm`. */
export async function startDemoListener(crm: Crm, port = 0, host = '127.0.0.1'): Promise<DemoListener> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = startListener(crm, port, host, resolve);
    s.once('error', reject);
  });
  // The 2015 code has no error handling; a request cut by a client must not crash the demo.
  server.on('request', (req: IncomingMessage) => req.on('error', () => undefined));
  server.on('error', () => undefined);
  const address = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${address.port}/ExchangePush/Listener.asmx`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
