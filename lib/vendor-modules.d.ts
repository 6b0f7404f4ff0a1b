/**
 * Types for two untyped CommonJS packages, limited to what we call: js-md4 (the NT hash) and
 * @ewsjs/ntlm-client (a second NTLM client in the tests).
 * Internal: nothing here is part of the public API.
 */

declare module '@ewsjs/ntlm-client' {
  /** A decoded NTLM Type 2 (CHALLENGE) message, as the library returns it. */
  interface NtlmType2Message {
    flags: number;
    /** `'ucs2'` when the server negotiated Unicode, else `'ascii'` (OEM). */
    encoding: 'ascii' | 'ucs2';
    /** 2 when the server set NEGOTIATE_EXTENDED_SESSIONSECURITY: the library then answers NTLMv2, else NTLMv1. */
    version: 1 | 2;
    challenge: Buffer;
    targetName: string;
    /** Present when the server sent TargetInfo (NTLMv2 needs it). */
    targetInfo?: { parsed: Record<string, string>; buffer: Buffer };
  }

  const ntlmClient: {
    /** `NTLM <base64 Type 1>`. */
    createType1Message(workstation?: string, target?: string): string;
    /** Decodes `NTLM <base64 Type 2>` (or the bare base64). Throws on a malformed message. */
    decodeType2Message(header: string): NtlmType2Message;
    /** `NTLM <base64 Type 3>`; `target` is the user's domain (default: the server's target name). */
    createType3Message(type2: NtlmType2Message, username: string, password: string, workstation?: string, target?: string): string;
  };
  export = ntlmClient;
}

declare module 'js-md4' {
  /** One incremental MD4 computation (pure JavaScript, unlike the top-level call, which uses OpenSSL's md4 on Node). */
  interface Md4Hasher {
    update(message: Uint8Array | ArrayBuffer | string): Md4Hasher;
    digest(): number[];
  }
  const md4: {
    create(): Md4Hasher;
  };
  export = md4;
}
