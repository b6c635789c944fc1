// The OAuth round trip: the provider's page opens in a window of its own,
// so the page (and its in-memory sign-in) stays; the page watches the
// connection until the authorization has been stored.

import { h, replace, announce } from "./dom.js";
import { explain } from "./api.js";

/** @typedef {import("../types/page").Ctx} Ctx */
/** @typedef {import("../types/api").Connection} Connection */

/**
 * Opens url (the connection's authorizeUrl) and waits until the
 * connection is authorized: a version after fromVersion, no longer
 * waiting for authorization. Progress is shown in region.
 * @param {Ctx} ctx
 * @param {string} id
 * @param {string} url
 * @param {number} fromVersion
 * @param {HTMLElement} region
 * @returns {Promise<Connection | null>} the connection, or null when abandoned
 */
export async function authorize(ctx, id, url, fromVersion, region) {
  const popup = window.open(url, "connmgr-authorize", "popup,width=640,height=720");
  let stop = false;
  replace(region, h("div", { class: "notice waiting", role: "status" },
    h("p", null, h("strong", null, "Waiting for the provider. "),
      "Finish signing in at the provider in the window that opened; this page continues by itself."),
    h("p", null, h("a", { href: url, target: "_blank", rel: "noopener" }, "Open the provider's page again"), " · ",
      h("button", { type: "button", class: "link", onclick: () => { stop = true; } }, "Stop waiting"))));
  announce("Waiting for the provider.");
  ctx.onLeave(() => { stop = true; });
  const deadline = Date.now() + 10 * 60_000;
  while (!stop && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    if (stop) break;
    try {
      const { data } = await ctx.api.call("GET", `/connections/${encodeURIComponent(id)}`);
      /** @type {Connection} */
      const c = data;
      if (c.version > fromVersion && c.status !== "pending_authorization") {
        popup?.close();
        replace(region);
        return c;
      }
    } catch (e) {
      replace(region, h("p", { class: "notice error", role: "alert" }, explain(e, "follow the authorization")));
      return null;
    }
  }
  popup?.close();
  replace(region, h("p", { class: "notice" }, "The authorization did not finish. Use Reconnect to try again."));
  return null;
}
