/**
 * Loads ews-javascript-api synchronously, on first use. The drop-in `ExchangeService` needs the
 * class when the app constructs one (a constructor cannot wait), and the rest of the streaming and
 * pull shims use the same loader so there is one copy of the module in play. Nothing loads it at
 * import time: it is an optional peer dependency.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import type { EjsModule } from './ejs-config.js';

let loaded: EjsModule | undefined;

/**
 * ews-javascript-api, resolved from this package's location (so it is the copy the app's own
 * `import 'ews-javascript-api'` gets in an ordinary install).
 *
 * @throws Error naming the missing package when it is not installed.
 */
export function requireEjs(): EjsModule {
  if (loaded !== undefined) return loaded;
  // Not the bare `require`: in the ES module bundle it is a stub that throws. The CommonJS bundle
  // gets import.meta.url shimmed (tsup `shims`).
  const load = createRequire(import.meta.url);
  try {
    loaded = load('ews-javascript-api') as EjsModule;
  } catch (error) {
    throw new Error("The ews-javascript-api adapter needs the 'ews-javascript-api' package: npm install ews-javascript-api", { cause: error });
  }
  return loaded;
}
