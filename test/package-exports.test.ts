import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `npm test` builds before running vitest; these tests load the built package the way a user's
// app would, through the `exports` map, from both module systems.
const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(`${root}/dist/index.js`) && existsSync(`${root}/dist/index.cjs`);

function run(code: string, type: 'module' | 'commonjs'): string {
  const flag = type === 'module' ? '--input-type=module' : '--input-type=commonjs';
  return execFileSync(process.execPath, [flag, '-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

describe.skipIf(!built)('package exports (built output)', () => {
  it('imports from an ES module consumer', () => {
    const out = run(
      `import * as m from 'ews-push-bridge'; import * as t from 'ews-push-bridge/testing';
       console.log(typeof m.EwsBridgeError, typeof m.responseCodeInfo, typeof m.StreamingGroup, typeof t)`,
      'module',
    );
    // The response-code table is the wire layer's: not on the main entry.
    expect(out).toBe('function undefined function object');
  });

  it('imports the wire entry from both module systems, sharing the main entry’s error classes', () => {
    const throwing = `let wireError; try { w.parseEnvelope('<!DOCTYPE x><x/>'); } catch (e) { wireError = e; }`;
    const shown = `[typeof w.responseCodeInfo, w.responseCodeInfo('ErrorServerBusy').action, typeof w.EnvelopeParser,
       wireError instanceof m.EwsBridgeError, wireError instanceof m.EwsXmlForbiddenError, wireError.code].join(' ')`;
    const expected = 'function backoff function true true EWS_XML_FORBIDDEN';
    expect(
      run(`import * as m from 'ews-push-bridge'; import * as w from 'ews-push-bridge/wire'; ${throwing} console.log(${shown})`, 'module'),
    ).toBe(expected);
    expect(
      run(`const m = require('ews-push-bridge'); const w = require('ews-push-bridge/wire'); ${throwing} console.log(${shown})`, 'commonjs'),
    ).toBe(expected);
  });

  it('keeps the two entries’ names apart: nothing of the wire layer on the main entry, no name on both', () => {
    const out = run(
      `const m = Object.keys(require('ews-push-bridge')); const w = Object.keys(require('ews-push-bridge/wire'));
       console.log(JSON.stringify({ both: m.filter((name) => w.includes(name)), wireOnMain: ['parseEnvelope', 'postSoap', 'RESPONSE_CODES', 'SOAP_ACTIONS'].filter((name) => m.includes(name)) }))`,
      'commonjs',
    );
    expect(JSON.parse(out)).toEqual({ both: [], wireOnMain: [] });
  });

  it('requires from a CommonJS consumer', () => {
    const out = run(
      `const m = require('ews-push-bridge'); const t = require('ews-push-bridge/testing');
       const e = new m.EwsHttpError(503); const g = new m.StreamingGroup({ url: 'http://127.0.0.1:1/EWS/Exchange.asmx' });
       console.log(e instanceof m.EwsBridgeError, e.code, e.retriable, typeof t, g.stats().connections); g.destroy()`,
      'commonjs',
    );
    expect(out).toBe('true EWS_HTTP_ERROR true object 0');
  });

  it('resolves its types for ESM and CommonJS TypeScript consumers (module Node16)', () => {
    const tsc = `${root}/node_modules/typescript/bin/tsc`;
    // Throws (failing the test) with tsc's diagnostics if either consumer does not type-check.
    execFileSync(process.execPath, [tsc, '-p', `${root}/test/consumers/tsconfig.json`], { cwd: root, encoding: 'utf8' });
  });

  it('lets an app typed against ews-javascript-api’s declarations use the ews-javascript-api adapter’s ExchangeService and StreamingSubscriptionConnection', () => {
    const tsc = `${root}/node_modules/typescript/bin/tsc`;
    execFileSync(process.execPath, [tsc, '-p', `${root}/test/consumers/tsconfig.ejs.json`], { cwd: root, encoding: 'utf8' });
  }, 120_000);
});
