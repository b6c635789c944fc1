// Sign-in. In `make dev` a persona picker asks the local identity provider
// (POST /dev/token) for a token; on AWS the page signs in at the API's
// identity provider with OpenID Connect, authorization code with PKCE.
// Tokens are kept in memory only: never in storage, a cookie or the URL.
// The PKCE verifier, state and nonce wait in sessionStorage for the
// provider's redirect back, and are removed when it arrives.

/** @typedef {import("../types/api").Claims} Claims */
/** @typedef {{ token: string, claims: Claims, label: string }} Session */
/** @typedef {{ issuer: string, audience: string, clientId: string }} SignInConfig */

/** The local personas of `make dev` (local/devauth.Personas): tenant contoso. */
export const personas = [
  { id: "tenant-admin", label: "Tenant administrator", who: "alice@contoso", about: "sees and manages every connection of the tenant",
    claims: { sub: "alice@contoso", tid: "contoso", roles: ["tenant_admin"] } },
  { id: "site-collection-admin", label: "Site collection administrator", who: "bob@contoso", about: "administers the site collection /sites/hr",
    claims: { sub: "bob@contoso", tid: "contoso", sca: ["/sites/hr"] } },
  { id: "site-owner", label: "Site owner", who: "carol@contoso", about: "Full Control of /sites/hr/payroll",
    claims: { sub: "carol@contoso", tid: "contoso", owns: ["/sites/hr/payroll"], sites: ["/sites/hr/payroll"] } },
  { id: "member", label: "Member", who: "dave@contoso", about: "can access /sites/hr/payroll",
    claims: { sub: "dave@contoso", tid: "contoso", sites: ["/sites/hr/payroll"] } },
];

/** @returns {SignInConfig} the sign-in settings the page was served with */
export function config() {
  /** @param {string} name */
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
  return { issuer: meta("connmgr-issuer"), audience: meta("connmgr-audience"), clientId: meta("connmgr-client-id") };
}

/**
 * The local runtime's clock, when the page runs on `make dev`; null on AWS
 * (GET /dev/clock is not a route there).
 * @returns {Promise<Date | null>}
 */
export async function devClock() {
  try {
    const res = await fetch("/dev/clock", { cache: "no-store" });
    if (!res.ok) return null;
    const body = await res.json();
    const now = new Date(body.now);
    return Number.isNaN(now.getTime()) ? null : now;
  } catch {
    return null;
  }
}

/**
 * A token from the local identity provider for claims.
 * @param {Claims} claims
 * @param {string} label
 * @returns {Promise<Session>}
 */
export async function devSignIn(claims, label) {
  const res = await fetch("/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(claims) });
  if (!res.ok) throw new Error(`the local identity provider refused these claims (${res.status})`);
  const { token } = await res.json();
  return { token, claims: decode(token), label };
}

/**
 * The claims of a JWT (not verified: the API's authorizer does that).
 * @param {string} jwt
 * @returns {Claims}
 */
export function decode(jwt) {
  const part = jwt.split(".")[1];
  if (!part) throw new Error("not a JWT");
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * Whether the token has expired (with a minute to spare).
 * @param {Session} s
 * @param {number} now milliseconds
 */
export function expired(s, now) {
  return typeof s.claims.exp === "number" && s.claims.exp * 1000 < now + 60_000;
}

const pendingKey = "connmgr.oidc";

/** @param {Uint8Array} bytes */
function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random() {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** @param {SignInConfig} cfg */
async function discover(cfg) {
  const res = await fetch(cfg.issuer.replace(/\/+$/, "") + "/.well-known/openid-configuration");
  if (!res.ok) throw new Error(`the identity provider's configuration could not be read (${res.status})`);
  const doc = await res.json();
  if (typeof doc.authorization_endpoint !== "string" || typeof doc.token_endpoint !== "string") {
    throw new Error("the identity provider's configuration names no authorization or token endpoint");
  }
  return { authorize: String(doc.authorization_endpoint), token: String(doc.token_endpoint) };
}

/** The page's own URL without query or fragment: the redirect URI. */
function redirectURI() {
  return location.origin + location.pathname;
}

/**
 * Sends the browser to the identity provider (OpenID Connect,
 * authorization code with PKCE S256).
 * @param {SignInConfig} cfg
 */
export async function oidcSignIn(cfg) {
  const ep = await discover(cfg);
  const verifier = random(), state = random(), nonce = random();
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  sessionStorage.setItem(pendingKey, JSON.stringify({ verifier, state, nonce, back: location.hash }));
  const u = new URL(ep.authorize);
  u.searchParams.set("response_type", "code");
  u.searchParams.set("client_id", cfg.clientId);
  u.searchParams.set("redirect_uri", redirectURI());
  u.searchParams.set("scope", "openid profile");
  u.searchParams.set("state", state);
  u.searchParams.set("nonce", nonce);
  u.searchParams.set("code_challenge", challenge);
  u.searchParams.set("code_challenge_method", "S256");
  location.assign(u.toString());
}

/**
 * Completes a sign-in when the provider has just sent the browser back
 * (?code=&state=), else returns null. The query is removed from the
 * address bar either way.
 * @param {SignInConfig} cfg
 * @returns {Promise<Session | null>}
 */
export async function oidcReturn(cfg) {
  const params = new URLSearchParams(location.search);
  const code = params.get("code"), state = params.get("state"), error = params.get("error");
  if (!code && !error) return null;
  const pending = JSON.parse(sessionStorage.getItem(pendingKey) ?? "null");
  sessionStorage.removeItem(pendingKey);
  history.replaceState(null, "", redirectURI() + (pending?.back ?? ""));
  if (error) throw new Error("the identity provider did not sign you in");
  if (!pending || pending.state !== state) throw new Error("this sign-in was not started here, or was already used; sign in again");
  const ep = await discover(cfg);
  const res = await fetch(ep.token, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: String(code), redirect_uri: redirectURI(), client_id: cfg.clientId, code_verifier: pending.verifier }),
  });
  if (!res.ok) throw new Error(`the identity provider refused the sign-in (${res.status})`);
  const tokens = await res.json();
  const id = typeof tokens.id_token === "string" ? decode(tokens.id_token) : null;
  if (id && id.nonce !== pending.nonce) throw new Error("the identity provider answered another sign-in");
  // The API accepts tokens for its audience: the access token when it is
  // a JWT for it, else the ID token when the page's client is the audience.
  for (const t of [tokens.access_token, tokens.id_token]) {
    if (typeof t !== "string" || t.split(".").length !== 3) continue;
    const claims = decode(t);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (aud.includes(cfg.audience)) return { token: t, claims, label: String(claims.name ?? claims.sub ?? "") };
  }
  throw new Error(`the identity provider issued no token for the API's audience (${cfg.audience})`);
}
