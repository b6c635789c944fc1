// The Connections page: sign-in, the views and the navigation between
// them (#/ connections, #/new, #/connections/<id>, #/runs).

import { Api } from "./api.js";
import { byId, h, replace, announce } from "./dom.js";
import { config, devClock, devSignIn, renewAt, oidcReturn, oidcSignIn, personas } from "./session.js";
import { listView } from "./views/list.js";
import { createView } from "./views/create.js";
import { detailView } from "./views/detail.js";
import { runsView } from "./views/runs.js";
import { devPanel } from "./views/dev.js";

/** @typedef {import("../types/page").Ctx} Ctx */
/** @typedef {import("../types/page").Session} Session */

const main = byId("main");
const nav = byId("nav");
const who = byId("who");
const notice = byId("notice");

/** @type {Session | null} */
let session = null;
let clockOffset = 0;
let dev = false;
/** @type {(() => void)[]} */
let leaving = [];
/** @type {{ refresh(): void } | null} */
let panel = null;
/** @type {{ message: string, kind: "ok" | "error" } | null} */
let flash = null;

/** @type {Promise<boolean> | null} */
let renewing = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let renewTimer;
const ended = "Your sign-in has ended. Sign in again to continue where you were.";

/**
 * Renews the session (once, however many callers ask at the same time);
 * when it cannot, asks the person to sign in again. True when renewed.
 * @returns {Promise<boolean>}
 */
function renew() {
  renewing ??= (async () => {
    const s = session;
    try {
      if (!s?.renew) throw new Error("no way to renew");
      const next = await s.renew();
      if (session !== s) return false; // signed out meanwhile
      keep(next);
      return true;
    } catch {
      if (session === s) signOut(ended, true);
      return false;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

/**
 * Holds s as the session and renews it a minute before its token expires,
 * so an idle page never shows an expired sign-in's errors.
 * @param {Session} s
 */
function keep(s) {
  session = s;
  clearTimeout(renewTimer);
  const wait = renewAt(s) - ctx.now();
  // Timers longer than 2^31 ms fire at once: a far expiry needs none.
  if (wait < 2 ** 31 - 1) renewTimer = setTimeout(renew, Math.max(0, wait));
}

const api = new Api(async () => {
  if (session && ctx.now() >= renewAt(session)) await renew();
  return session?.token ?? null;
}, async (again) => {
  if (again && session?.renew && await renew()) return true;
  if (session) signOut(ended, true);
  return false;
});

/** @type {Ctx} */
const ctx = {
  api,
  get session() {
    if (!session) throw new Error("not signed in");
    return session;
  },
  types: new Map(),
  get dev() { return dev; },
  now: () => Date.now() + clockOffset,
  go(hash, message, kind = "ok") {
    flash = message ? { message, kind } : null;
    if (location.hash === hash || (hash === "#/" && !location.hash)) route();
    else location.hash = hash;
  },
  notify(msg, kind = "ok") {
    replace(notice, msg ? h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, msg) : null);
    if (kind === "ok" && msg) announce(msg);
  },
  onLeave(fn) { leaving.push(fn); },
  refreshDev() {
    panel?.refresh();
    syncClock();
  },
};

async function syncClock() {
  if (!dev) return;
  const now = await devClock();
  if (now) clockOffset = now.getTime() - Date.now();
}

/**
 * @param {string} [message]
 * @param {boolean} [stay] come back to this view after signing in (the
 *   sign-in ended by itself); else whoever signs in next starts at the
 *   list (the current view may be something they may not see)
 */
function signOut(message, stay = false) {
  session = null;
  clearTimeout(renewTimer);
  if (!stay) history.replaceState(null, "", location.pathname);
  showSignIn(message);
}

/** @param {Session} s */
async function signedIn(s) {
  keep(s);
  const r = s.claims;
  replace(who, h("span", null, "Signed in as ", h("strong", null, s.label || String(r.sub)), r.tid ? ` (tenant ${r.tid})` : ""),
    h("button", { type: "button", class: "link", onclick: () => signOut() }, dev ? "Switch persona" : "Sign out"));
  try {
    const { data } = await api.call("GET", "/connection-types");
    ctx.types = new Map(data.items.map((/** @type {import("../types/api").ConnectionType} */ t) => [t.id, t]));
  } catch {
    ctx.types = new Map();
  }
  if (dev && !panel) panel = devPanel(byId("dev"), ctx);
  route();
}

/** @param {string} [message] */
function showSignIn(message) {
  for (const fn of leaving) fn();
  leaving = [];
  replace(nav);
  replace(who);
  ctx.notify("");
  const err = h("p", { class: "notice error", role: "alert", hidden: !message }, message ?? "");
  /** @param {unknown} e */
  const fail = (e) => {
    err.hidden = false;
    err.textContent = `Could not sign in: ${e instanceof Error ? e.message : String(e)}`;
  };
  if (dev) {
    const custom = h("textarea", { id: "custom-claims", rows: 4, spellcheck: "false" },
      JSON.stringify({ sub: "erin@contoso", tid: "contoso", sites: ["/sites/hr"] }));
    replace(main,
      h("h1", { tabindex: -1 }, "Sign in"),
      h("p", null, "Local development: choose who you are. Each persona is a user of the tenant ",
        h("strong", null, "contoso"), " with a token from the local identity provider."),
      err,
      h("ul", { class: "personas" }, personas.map((p) => h("li", null,
        h("button", { type: "button", class: "persona", "data-persona": p.id,
          onclick: () => devSignIn(p.claims, `${p.who}, ${p.label.toLowerCase()}`).then(signedIn, fail) },
        h("strong", null, p.label), h("span", null, `${p.who}: ${p.about}`))))),
      h("details", null, h("summary", null, "Custom claims"),
        h("form", { onsubmit: (/** @type {Event} */ e) => {
          e.preventDefault();
          let claims;
          try { claims = JSON.parse(custom.value); } catch { fail(new Error("the claims are not a JSON object")); return; }
          devSignIn(claims, String(claims.sub ?? "")).then(signedIn, fail);
        } },
        h("label", { for: "custom-claims" }, "Claims (JSON): sub, tid, roles, sca, owns, sites"), custom,
        h("button", { type: "submit" }, "Sign in with these claims"))));
  } else {
    const cfg = config();
    replace(main,
      h("h1", { tabindex: -1 }, "Sign in"),
      h("p", null, "Sign in with your organisation's account to manage connections."),
      err,
      h("button", { type: "button", class: "primary", onclick: () => oidcSignIn(cfg).catch(fail) }, "Sign in"));
  }
  focusHeading();
}

function focusHeading() {
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.setAttribute("tabindex", "-1");
    h1.focus();
  }
}

const sections = [
  { hash: "#/", label: "Connections" },
  { hash: "#/runs", label: "Runs" },
  { hash: "#/new", label: "New connection" },
];

/** Counts routes: only the latest may move focus or set the title. */
let routes = 0;

async function route() {
  if (!session) return;
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return; // the skip link
  const current = ++routes;
  for (const fn of leaving) fn();
  leaving = [];
  ctx.notify(flash?.message ?? "", flash?.kind);
  flash = null;
  const active = hash === "#/runs" ? "#/runs" : hash === "#/new" ? "#/new" : "#/";
  replace(nav, h("ul", null, sections.map((s) => h("li", null,
    h("a", { href: s.hash, "aria-current": s.hash === active ? "page" : null }, s.label)))));
  // Each route renders into a container of its own: a view still loading
  // when the person moves on (a long list) finishes into its detached
  // container, never over the view in use, and never takes the focus.
  const view = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  replace(main, view);
  try {
    let m;
    if (hash === "#/new") {
      createView(view, ctx);
    } else if (hash === "#/runs") {
      await runsView(view, ctx);
    } else if ((m = /^#\/connections\/([^/?]+)$/.exec(hash))) {
      await detailView(view, ctx, decodeURIComponent(m[1]));
    } else {
      await listView(view, ctx);
    }
  } catch (e) {
    replace(view, h("h1", null, "Something went wrong"), h("p", { class: "notice error", role: "alert" },
      "The page could not show this. Reload the page and try again."));
    console.error(e);
  }
  if (current !== routes) return;
  document.title = `${main.querySelector("h1")?.textContent ?? "Connections"} · Connections`;
  focusHeading();
}

window.addEventListener("hashchange", route);

async function boot() {
  const clock = await devClock();
  dev = clock !== null;
  if (clock) clockOffset = clock.getTime() - Date.now();
  document.body.classList.toggle("dev", dev);
  if (!dev) {
    try {
      const s = await oidcReturn(config());
      if (s) {
        await signedIn(s);
        return;
      }
    } catch (e) {
      showSignIn(`Could not sign in: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  }
  showSignIn();
}

boot();
