/** The `date` header value, formatted at most once per second (as nginx and Envoy do). */
let cached = '';
let cachedAt = 0;

export function httpDate(): string {
  const now = Date.now();
  if (now - cachedAt >= 1000 || cached === '') {
    cachedAt = now - (now % 1000);
    cached = new Date(cachedAt).toUTCString();
  }
  return cached;
}
