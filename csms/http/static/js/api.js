// The REST API under /api/v1 with the bearer token (never in a URL).

export const API = "/api/v1";
const STORAGE_KEY = "csms.dashboard.token";

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The token: from "#token=..." (then removed from the address bar), else local storage. */
export function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    saveToken(fromUrl.trim());
    fragment.delete("token");
    const rest = fragment.toString();
    const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
    window.history.replaceState(null, "", url);
  }
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch {
    return fromUrl;
  }
}

export function saveToken(value) {
  try {
    window.localStorage.setItem(STORAGE_KEY, value);
  } catch {
    // Storage disabled: the token lives as long as the page.
  }
}

export function forgetToken() {
  try {
    window.localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}

/** GET `path` (under /api/v1) as JSON; Unauthorized on 401/403, ApiError otherwise. */
export async function getJson(token, path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
  }
  const search = query.toString();
  const url = `${API}${path}${search ? `?${search}` : ""}`;
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401 || response.status === 403) {
    throw new Unauthorized(`${response.status} on ${path}`);
  }
  if (!response.ok) throw new ApiError(response.status, `${response.status} on ${path}`);
  return response.json();
}
