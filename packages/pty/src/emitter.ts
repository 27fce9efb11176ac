/** A minimal listener set: listeners are called in order, and one that throws never stops the others. */
export class Emitter<T> {
  readonly #listeners = new Set<(value: T) => void>();

  constructor(private readonly onError: (error: unknown) => void) {}

  /** Adds a listener; the returned function removes it. */
  on(listener: (value: T) => void): () => void {
    // A wrapper per registration, so the same function registered twice is called twice and removed once.
    const entry = (value: T) => listener(value);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(value: T): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(value);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }

  get size(): number {
    return this.#listeners.size;
  }
}
