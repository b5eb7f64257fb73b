// Formatting of times, durations and shares.

/** Milliseconds since the epoch of an ISO 8601 string, or null. */
export function parseTime(value) {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** "2h 05m 09s", "5m 09s", "9s" for a duration in milliseconds (sign ignored). */
export function duration(ms) {
  let seconds = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(seconds / 86400);
  seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (days) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  if (minutes) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}

/** "12s ago", "3m ago", "2h ago", "4d ago" for a past ISO time; "–" when unknown. */
export function ago(value, now = Date.now()) {
  const at = parseTime(value);
  if (at === null) return "–";
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/** Local date and time of an ISO string, for tooltips. */
export function localTime(value) {
  const at = parseTime(value);
  return at === null ? "" : new Date(at).toLocaleString();
}

/** "75%" for 0.75; "–" for null. */
export function percent(share) {
  if (share === null || share === undefined) return "–";
  return `${Math.round(share * 100)}%`;
}

/** "soft_reset" -> "soft reset". */
export function words(value) {
  return value ? String(value).replaceAll("_", " ") : "";
}
