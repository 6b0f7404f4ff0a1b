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
    expect(out).toBe('function function function object');
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
