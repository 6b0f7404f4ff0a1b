/**
 * A real `redis-server` (Debian's package) for tests: on 127.0.0.1, a free port, no persistence,
 * killed at teardown. Tests skip with a message when the binary is absent.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';

const BINARY = 'redis-server';

/** Whether `redis-server` can be run here; otherwise a message saying why tests skip. */
export function redisServerMissing(): string | undefined {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return 'redis-server is not installed (apt-get install -y redis-server): Redis tests skipped';
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (redis-server has no `--port 0`): bind a probe, read it, close it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** A running redis-server. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** A new ioredis client on it (the caller quits it). */
  client(options?: RedisOptions): Redis;
  /** SIGSTOP: the server keeps its sockets but answers nothing (an outage as clients see it). */
  pause(): void;
  /** SIGCONT after {@link RedisServer.pause}. */
  resume(): void;
  stop(): Promise<void>;
}

/** Starts redis-server and resolves once it answers PING. */
export async function startRedisServer(): Promise<RedisServer> {
  let lastError: unknown;
  // A port found free can be taken before redis binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await waitReady(child, () => output);
    if (ready) return handle(child, port, exited);
    lastError = new Error(`redis-server did not start on port ${port}: ${output}`);
    child.kill('SIGKILL');
    await exited;
  }
  throw lastError;
}

function waitReady(child: ChildProcess, output: () => string): Promise<boolean> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (/Ready to accept connections/.test(output())) {
        clearInterval(check);
        resolve(true);
      } else if (child.exitCode !== null || child.signalCode !== null) {
        clearInterval(check);
        resolve(false);
      }
    }, 10);
  });
}

function handle(child: ChildProcess, port: number, exited: Promise<void>): RedisServer {
  const url = `redis://127.0.0.1:${port}`;
  return {
    port,
    url,
    client: (options) => new Redis(port, '127.0.0.1', { lazyConnect: false, ...options }),
    pause: () => {
      child.kill('SIGSTOP');
    },
    resume: () => {
      child.kill('SIGCONT');
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exited;
    },
  };
}

/** A TCP proxy in front of a Redis server whose traffic can be cut both ways (a network partition). */
export interface PartitionProxy {
  readonly port: number;
  /** Stops forwarding in both directions; bytes wait in the sockets. */
  partition(): void;
  /** Forwards again, the waiting bytes first. */
  heal(): void;
  close(): Promise<void>;
}

/** Starts a {@link PartitionProxy} on 127.0.0.1 (port 0) to `targetPort`. */
export async function startPartitionProxy(targetPort: number): Promise<PartitionProxy> {
  type Pair = readonly [Socket, Socket];
  const pairs = new Set<Pair>();
  let cut = false;
  const link = ([client, upstream]: Pair): void => {
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const unlink = ([client, upstream]: Pair): void => {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  };
  const server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1');
    const pair: Pair = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    if (cut) unlink(pair);
    else link(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    partition: () => {
      cut = true;
      for (const pair of pairs) unlink(pair);
    },
    heal: () => {
      cut = false;
      for (const pair of pairs) link(pair);
    },
    close: async () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
