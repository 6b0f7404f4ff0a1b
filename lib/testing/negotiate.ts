/**
 * A Negotiate (Kerberos) acceptor for {@link EwsSimulator}'s `acceptNegotiate`, on the `kerberos`
 * package's GSSAPI server API — the same optional peer the client uses — with the service keys
 * from a keytab (`KRB5_KTNAME`). So a test exercises a real ticket from a real KDC, checked by MIT
 * Kerberos, not by code of this project.
 */
import { hostBasedServiceName, importKerberos } from '../ews/negotiate.js';
import type { NegotiateAcceptor } from './auth.js';

/** The part of the `kerberos` package's server API used here. */
interface KerberosServerModule {
  initializeServer(service: string): Promise<{ step(token: string): Promise<string>; readonly username: string; readonly contextComplete: boolean }>;
}

/** Options of {@link kerberosAcceptor}. */
export interface KerberosAcceptorOptions {
  /** The service principal whose keys (in the keytab `KRB5_KTNAME` names) decrypt the ticket. Default `HTTP/127.0.0.1`. */
  readonly spn?: string;
}

/**
 * A {@link NegotiateAcceptor} that accepts Kerberos tickets (raw or inside SPNEGO) with GSSAPI and
 * answers with the mutual-authentication token. Each token gets a fresh acceptor context.
 *
 * @throws EwsPeerMissingError (when called) if the `kerberos` package is not installed.
 */
export function kerberosAcceptor(options: KerberosAcceptorOptions = {}): NegotiateAcceptor {
  const service = hostBasedServiceName(options.spn ?? 'HTTP/127.0.0.1');
  return async (token) => {
    const kerberos = (await importKerberos()) as unknown as KerberosServerModule;
    const server = await kerberos.initializeServer(service);
    const responseToken = await server.step(token);
    if (!server.contextComplete || server.username === '') return undefined;
    return { user: server.username, ...(responseToken ? { responseToken } : {}) };
  };
}
