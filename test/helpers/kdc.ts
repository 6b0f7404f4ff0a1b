/**
 * A real MIT Kerberos KDC on 127.0.0.1 for tests: a throwaway realm, database, principals and
 * keytabs made in a temp directory with Debian's `krb5-kdc` tools (`kdb5_util`, `kadmin.local`,
 * `krb5kdc`). `kdcAvailable()` says why it cannot run, so a suite can skip with that message.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

const TOOLS = ['/usr/sbin/krb5kdc', '/usr/sbin/kdb5_util', '/usr/sbin/kadmin.local'];

/** `undefined` when a KDC can be started, else why not. */
export function kdcUnavailableReason(): string | undefined {
  const missing = TOOLS.filter((tool) => !existsSync(tool));
  return missing.length === 0 ? undefined : `MIT KDC tools missing (${missing.join(', ')}): apt-get install -y krb5-kdc krb5-admin-server`;
}

export interface TestKdc {
  readonly realm: string;
  readonly dir: string;
  /** The krb5.conf for clients and servers (set KRB5_CONFIG to it). */
  readonly krb5Conf: string;
  /** Keytab of the HTTP service principals (acceptor: KRB5_KTNAME). */
  readonly serviceKeytab: string;
  /** Keytab of the client principal (initiator: KRB5_CLIENT_KTNAME). */
  readonly clientKeytab: string;
  /** The client principal, e.g. `svc-ews@EWS.TEST`. */
  readonly clientPrincipal: string;
  readonly clientPassword: string;
  /** Runs kadmin.local with one query. */
  kadmin(query: string): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      // The KDC listens on UDP too: make sure that port is free as well.
      const udp = createSocket('udp4');
      udp.once('error', () => server.close(() => resolve(freePort())));
      udp.bind(port, '127.0.0.1', () => udp.close(() => server.close(() => resolve(port))));
    });
  });
}

/** Starts a KDC for realm `EWS.TEST` with HTTP/localhost, HTTP/127.0.0.1 and a client principal. */
export async function startKdc(options: { servicePrincipals?: readonly string[] } = {}): Promise<TestKdc> {
  const realm = 'EWS.TEST';
  const dir = mkdtempSync(join(tmpdir(), 'ews-kdc-'));
  const port = await freePort();
  const krb5Conf = join(dir, 'krb5.conf');
  const kdcConf = join(dir, 'kdc.conf');
  writeFileSync(
    krb5Conf,
    `[libdefaults]
  default_realm = ${realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  default_ccache_name = FILE:${join(dir, 'ccache')}
[realms]
  ${realm} = {
    kdc = 127.0.0.1:${port}
  }
`,
  );
  writeFileSync(
    kdcConf,
    `[kdcdefaults]
  kdc_ports = ${port}
  kdc_tcp_ports = ${port}
[realms]
  ${realm} = {
    database_name = ${join(dir, 'principal')}
    key_stash_file = ${join(dir, 'stash')}
    acl_file = ${join(dir, 'kadm5.acl')}
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:${join(dir, 'kdc.log')}
`,
  );
  writeFileSync(join(dir, 'kadm5.acl'), '');
  const env = { ...process.env, KRB5_CONFIG: krb5Conf, KRB5_KDC_PROFILE: kdcConf };
  const run = (file: string, args: string[]): string => execFileSync(file, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  run('/usr/sbin/kdb5_util', ['create', '-s', '-r', realm, '-P', 'master-password-for-tests']);
  const kadmin = (query: string): string => run('/usr/sbin/kadmin.local', ['-r', realm, '-q', query]);
  const clientPassword = 'Kerberos-Passw0rd';
  const clientPrincipal = `svc-ews@${realm}`;
  kadmin(`addprinc -pw ${clientPassword} ${clientPrincipal}`);
  const serviceKeytab = join(dir, 'http.keytab');
  const clientKeytab = join(dir, 'client.keytab');
  for (const spn of options.servicePrincipals ?? ['HTTP/localhost', 'HTTP/127.0.0.1']) {
    kadmin(`addprinc -randkey ${spn}@${realm}`);
    kadmin(`ktadd -k ${serviceKeytab} ${spn}@${realm}`);
  }
  kadmin(`ktadd -norandkey -k ${clientKeytab} ${clientPrincipal}`);
  const kdc: ChildProcess = spawn('/usr/sbin/krb5kdc', ['-n', '-r', realm], { env, cwd: dir, stdio: 'ignore' });
  await waitForPort(port);
  return {
    realm,
    dir,
    krb5Conf,
    serviceKeytab,
    clientKeytab,
    clientPrincipal,
    clientPassword,
    kadmin,
    stop: async () => {
      if (kdc.exitCode === null) {
        const exited = new Promise<void>((resolve) => kdc.once('exit', () => resolve()));
        kdc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number): Promise<void> {
  const inUse = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const socket = createServer();
      socket.once('error', () => resolve(true)); // in use: the KDC has it
      socket.listen(port, '127.0.0.1', () => socket.close(() => resolve(false)));
    });
  await until(inUse, `the KDC to listen on 127.0.0.1:${port}`, { intervalMs: 20 });
}
