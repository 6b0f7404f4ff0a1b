/**
 * Child process of test/hostile/checkpoint-lock.test.ts: one owner of a FileCheckpointStore file.
 * Writes `count` keys `<prefix>-<i>` one `set` at a time, printing `ok <i>` after each; on a
 * failure prints `error <json>` (code, message, holder) and exits 2. Then, by `mode`:
 * - `exit`: exits 0 without calling close() (the exit hook releases the lock);
 * - `hold`: stays alive holding the lock until killed;
 * - `close-hold`: close()s the store (releasing the lock), prints `closed`, and stays alive.
 * After `done` it never writes again.
 *
 * Usage: tsx test/children/checkpoint-owner.ts <file> <prefix> <count> <exit|hold|close-hold>
 */
import { FileCheckpointStore } from '../../lib/checkpoint/file-store.js';
import { EwsBridgeError } from '../../lib/errors.js';

async function main(): Promise<void> {
  const [file, prefix, countText, mode] = process.argv.slice(2);
  if (file === undefined || prefix === undefined || countText === undefined || mode === undefined) {
    throw new Error('usage: checkpoint-owner <file> <prefix> <count> <exit|hold|close-hold>');
  }
  const store = new FileCheckpointStore({ path: file });
  for (let i = 1; i <= Number(countText); i++) {
    try {
      await store.set(`${prefix}-${i}`, { watermark: `${prefix}-wm-${i}` });
    } catch (error) {
      const typed = error instanceof EwsBridgeError;
      process.stdout.write(
        `error ${JSON.stringify({ code: typed ? error.code : undefined, message: (error as Error).message, holder: (error as { holder?: unknown }).holder })}\n`,
      );
      process.exit(2);
    }
    process.stdout.write(`ok ${i}\n`);
  }
  process.stdout.write('done\n');
  if (mode === 'exit') return;
  if (mode === 'close-hold') {
    await store.close();
    process.stdout.write('closed\n');
  }
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
