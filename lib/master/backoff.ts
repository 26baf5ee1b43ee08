const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;

/**
 * The delay before forking again after n quick deaths in a row (of a slot's
 * worker, or of the spare): 0, 100, 200, 400 ... 10 s.
 */
export function backoff(n: number): number {
  return n <= 1 ? 0 : Math.min(BACKOFF_BASE_MS * 2 ** (n - 2), BACKOFF_MAX_MS);
}
