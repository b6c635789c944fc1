// Sign-in. In `make dev` a persona picker asks the local identity provider
// (POST /dev/token) for a token; on AWS the page signs in at the API's
// identity provider with OpenID Connect, authorization code with PKCE.
// Tokens are kept in memory only: never in storage, a cookie or the URL.
// The PKCE verifier, state and nonce wait in sessionStorage for the
// provider's redirect back, and are removed when it arrives. A session
// renews itself when it can (a refresh token from the provider, a new
// local token in `make dev`); main.js renews it before it expires and asks
// the person to sign in again when it cannot.

/** @typedef {import("../types/api").Claims} Claims */
/** @typedef {import("../types/page").Session} Session */
/** @typedef {{ issuer: string, audience: string, clientId: string, tokenEndpoint: string }} SignInConfig */

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
  return { issuer: meta("connmgr-issuer"), audience: meta("connmgr-audience"), clientId: meta("connmgr-client-id"),
    tokenEndpoint: meta("connmgr-token-endpoint") };
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
  // Renewal asks for the same person again, with a fresh lifetime.
  const { exp: _exp, iat: _iat, nbf: _nbf, ...again } = claims;
  return { token, claims: decode(token), label, renew: () => devSignIn(again, label) };
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

/** A token is renewed this long before it expires. */
export const renewAhead = 60_000;

/**
 * When the session's token should be renewed (a minute before it
 * expires), in milliseconds; Infinity when it names no expiry.
 * @param {Session} s
 */
export function renewAt(s) {
  return typeof s.claims.exp === "number" ? s.claims.exp * 1000 - renewAhead : Infinity;
}

const pendingKey = "connmgr.oidc";

/** @param {Uint8Array} bytes */
function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random() {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * The provider's endpoints. The token endpoint is the configured one
 * (PageTokenEndpoint) or else the discovery document's, which must then be
 * on the issuer's origin: the page's CSP lets it reach no other.
 * @param {SignInConfig} cfg
 */
async function discover(cfg) {
  let doc;
  try {
    const res = await fetch(cfg.issuer.replace(/\/+$/, "") + "/.well-known/openid-configuration");
    if (!res.ok) throw new Error(`the identity provider's configuration could not be read (${res.status})`);
    doc = await res.json();
  } catch (e) {
    if (e instanceof TypeError) throw new Error("the identity provider could not be reached");
    throw e;
  }
  if (typeof doc.authorization_endpoint !== "string" || (typeof doc.token_endpoint !== "string" && !cfg.tokenEndpoint)) {
    throw new Error("the identity provider's configuration names no authorization or token endpoint");
  }
  const token = cfg.tokenEndpoint || String(doc.token_endpoint);
  if (!cfg.tokenEndpoint && new URL(token).origin !== new URL(cfg.issuer).origin) {
    throw new Error(`the identity provider's token endpoint is on ${new URL(token).origin}, which this page is not set up to reach. ` +
      "An administrator must set the stack's PageTokenEndpoint parameter to it");
  }
  const scopes = Array.isArray(doc.scopes_supported) ? doc.scopes_supported : [];
  return { authorize: String(doc.authorization_endpoint), token, offline: scopes.includes("offline_access") };
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
  // offline_access, where the provider offers it, brings a refresh token
  // to renew the sign-in with (kept in memory like the token).
  u.searchParams.set("scope", ep.offline ? "openid profile offline_access" : "openid profile");
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
  return exchange(cfg, ep.token, { grant_type: "authorization_code", code: String(code), redirect_uri: redirectURI(),
    client_id: cfg.clientId, code_verifier: pending.verifier }, pending.nonce, "");
}

/**
 * A session from the provider's token endpoint: the authorization code's
 * exchange, or a renewal with the refresh token (kept when the answer
 * carries no new one).
 * @param {SignInConfig} cfg
 * @param {string} endpoint
 * @param {Record<string, string>} form
 * @param {string} nonce the sign-in's nonce ("" on a renewal)
 * @param {string} refresh the refresh token so far
 * @returns {Promise<Session>}
 */
async function exchange(cfg, endpoint, form, nonce, refresh) {
  let res;
  try {
    res = await fetch(endpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });
  } catch {
    throw new Error("the identity provider's token endpoint could not be reached");
  }
  if (!res.ok) throw new Error(`the identity provider refused the sign-in (${res.status})`);
  const tokens = await res.json();
  const id = typeof tokens.id_token === "string" ? decode(tokens.id_token) : null;
  if (nonce && id && id.nonce !== nonce) throw new Error("the identity provider answered another sign-in");
  const next = typeof tokens.refresh_token === "string" && tokens.refresh_token ? tokens.refresh_token : refresh;
  // The API accepts tokens for its audience: the access token when it is
  // a JWT for it, else the ID token when the page's client is the audience.
  for (const t of [tokens.access_token, tokens.id_token]) {
    if (typeof t !== "string" || t.split(".").length !== 3) continue;
    const claims = decode(t);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(cfg.audience)) continue;
    return {
      token: t, claims, label: String(claims.name ?? claims.sub ?? id?.name ?? ""),
      renew: next ? () => exchange(cfg, endpoint, { grant_type: "refresh_token", refresh_token: next, client_id: cfg.clientId }, "", next) : undefined,
    };
  }
  throw new Error(`the identity provider issued no token for the API's audience (${cfg.audience})`);
}
