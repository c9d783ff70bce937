// Where the page's bearer token comes from, and what its claims say (for display and routing only:
// the gateway and the services verify the token; the page never trusts its own reading of it).
//
// In order: `#token=…` in the URL (development: `make run` prints such a URL), `window.EW_TOKEN`
// (set by the EW product's page before this module loads), or a `{type: "ew-token", token}` message
// posted by the embedding EW product window: an <iframe src=".../settings/?embedder=<EW origin>">
// asks its parent with `{type: "ew-token-request"}` and accepts the answer from that origin only.

/** Decodes a JWT's payload without verifying it; null when the token is not a JWT. */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return null;
  }
}

function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    // Keep it for a reload and for the return from ClassLink's sign-in, then drop it from the address bar.
    window.sessionStorage.setItem("ew-token", token);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return token;
}

/** Resolves with the bearer token as soon as one of the sources has it; null when none can. */
export function obtainToken() {
  const embedder = new URLSearchParams(window.location.search).get("embedder") || window.EW_PARENT_ORIGIN;
  const immediate = tokenFromFragment() || window.EW_TOKEN || window.sessionStorage.getItem("ew-token");
  if (immediate) return Promise.resolve(immediate);
  if (!embedder || window.parent === window) return Promise.resolve(null);
  return new Promise((resolve) => {
    window.addEventListener("message", function listen(event) {
      if (!embedder || event.origin !== embedder) return;
      if (event.data && event.data.type === "ew-token" && typeof event.data.token === "string") {
        window.removeEventListener("message", listen);
        window.sessionStorage.setItem("ew-token", event.data.token);
        resolve(event.data.token);
      }
    });
    window.parent.postMessage({ type: "ew-token-request" }, embedder);
  });
}
