/** Generic single-flight: concurrent callers with the same key share one promise. */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Number of flights running. */
  get size(): number {
    return this.inflight.size;
  }

  /**
   * Runs `fn` for `key` unless a run is already in flight, in which case its promise is shared.
   * `onJoin` is called for every caller that joined an existing run.
   */
  run(key: string, fn: () => Promise<T>, onJoin?: () => void): Promise<T> {
    const running = this.inflight.get(key);
    if (running) {
      onJoin?.();
      return running;
    }
    const p = (async () => {
      try {
        return await fn();
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }
}
