/**
 * Child process of test/checkpoint.test.ts: writes checkpoints in a tight loop until it is killed.
 * Prints `start <n>` with the counter it resumed from, then `ok <n>` after each `set` resolved
 * (stdout to a pipe is synchronous on POSIX, so a line the parent read was written after the set
 * was durable).
 *
 * Usage: tsx test/children/checkpoint-writer.ts <file> <key>
 */
import { FileCheckpointStore } from '../../lib/checkpoint/file-store.js';
import { counterOf, token } from './checkpoint-token.js';

async function main(): Promise<void> {
  const [file, key] = process.argv.slice(2);
  if (file === undefined || key === undefined) throw new Error('usage: checkpoint-writer <file> <key>');
  const store = new FileCheckpointStore({ path: file });
  const current = await store.get(key);
  let n = current === undefined ? 0 : counterOf(current.watermark);
  if (n === undefined) throw new Error(`torn or foreign watermark: ${String(current?.watermark)}`);
  process.stdout.write(`start ${n}\n`);
  for (;;) {
    n += 1;
    // Two keys and a nested object per write, so a torn file could not pass for a whole one.
    await store.set(key, { watermark: token(n), syncStates: { inbox: token(n), sent: token(n) } });
    await store.set(`${key}:shadow`, { watermark: token(n) });
    process.stdout.write(`ok ${n}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
