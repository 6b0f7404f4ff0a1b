/**
 * A checkpoint store that lives and dies with the process.
 *
 * @packageDocumentation
 */
import { mergeCheckpoint, type Checkpoint, type CheckpointStore, type CheckpointUpdate } from './checkpoint-store.js';

/**
 * Keeps checkpoints in memory: resumes across resubscriptions and re-subscriptions of an
 * Observable within one process, not across restarts. The default store of the pull and hybrid
 * sources; also handy in tests.
 */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly #records = new Map<string, Checkpoint>();

  /** {@inheritDoc CheckpointStore.get} */
  get(key: string): Promise<Checkpoint | undefined> {
    const record = this.#records.get(key);
    // A copy, so a caller mutating what it got cannot change what is stored.
    return Promise.resolve(record === undefined ? undefined : structuredClone(record));
  }

  /** {@inheritDoc CheckpointStore.set} */
  set(key: string, update: CheckpointUpdate): Promise<void> {
    try {
      this.#records.set(key, mergeCheckpoint(this.#records.get(key), update, new Date(), key));
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return Promise.resolve();
  }

  /** {@inheritDoc CheckpointStore.delete} */
  delete(key: string): Promise<void> {
    this.#records.delete(key);
    return Promise.resolve();
  }

  /** Every key currently stored. */
  keys(): string[] {
    return [...this.#records.keys()];
  }
}
