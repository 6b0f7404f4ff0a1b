/**
 * The servers and agents a test file opens on 127.0.0.1, closed after each test (connections cut,
 * agents destroyed), so no test leaves a socket to the next.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { afterEach } from 'vitest';

/** Registers the `afterEach` and returns the lists to push into. */
export function closedAfterEach(): { readonly servers: Server[]; readonly agents: { destroy(): void }[] } {
  const servers: Server[] = [];
  const agents: { destroy(): void }[] = [];
  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    await Promise.all(
      servers.splice(0).map(async (server) => {
        server.closeAllConnections();
        server.close();
        await once(server, 'close');
      }),
    );
  });
  return { servers, agents };
}
