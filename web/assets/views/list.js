// The connections list: Shared and Personal tabs, the "needs attention"
// view with its counts, filters by type, status and scope, and search by
// name.

import { h, replace, time } from "../dom.js";
import { explain } from "../api.js";
import { attentionStatuses, describeAvailability, reasonText, statusWords } from "../rules.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").Connection} Connection */

/** The view's state survives moving to a detail and back. */
const state = { tab: /** @type {"shared" | "personal" | "attention"} */ ("shared"), type: "", status: "", scope: "", q: "" };

/**
 * @param {Connection} c
 * @returns {HTMLElement}
 */
export function statusBadge(c) {
  return h("span", { class: `badge s-${c.disabled ? "disabled" : c.status}` }, c.disabled ? "Disabled" : statusWords[c.status] ?? c.status);
}

/**
 * @param {HTMLElement} main
 * @param {Ctx} ctx
 */
export async function listView(main, ctx) {
  let all;
  try {
    all = await ctx.api.all("/connections");
  } catch (e) {
    replace(main, h("h1", null, "Connections"), h("p", { class: "notice error", role: "alert" }, explain(e, "list the connections")));
    return;
  }
  /** @type {Connection[]} */
  const items = all.items;
  const counts = Object.fromEntries(attentionStatuses.map((s) => [s, items.filter((c) => c.status === s).length]));
  const attention = items.filter((c) => /** @type {readonly string[]} */ (attentionStatuses).includes(c.status));

  const body = h("div", { id: "list-body" });
  const search = h("input", { id: "filter-q", type: "search", value: state.q, autocomplete: "off" });
  /**
   * @param {string} id
   * @param {string} label
   * @param {keyof typeof state} key
   * @param {[string, string][]} options
   */
  const select = (id, label, key, options) => {
    const s = h("select", { id }, h("option", { value: "" }, "All"), options.map(([v, l]) => h("option", { value: v, selected: state[key] === v }, l)));
    s.addEventListener("change", () => {
      /** @type {any} */ (state)[key] = s.value;
      draw();
    });
    return h("div", { class: "filter" }, h("label", { for: id }, label), s);
  };
  search.addEventListener("input", () => {
    state.q = search.value;
    draw();
  });

  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Which connections" });
  const tabDefs = /** @type {const} */ ([
    ["shared", "Shared", items.filter((c) => c.kind === "shared").length],
    ["personal", "Personal", items.filter((c) => c.kind === "personal").length],
    ["attention", "Needs attention", attention.length],
  ]);
  const drawTabs = () => replace(tabs, tabDefs.map(([id, label, n]) => h("button", {
    type: "button", class: `tab${id === "attention" && n > 0 ? " warn" : ""}`, "aria-pressed": String(state.tab === id), "data-tab": id,
    onclick: () => { state.tab = id; drawTabs(); draw(); },
  }, label, " ", h("span", { class: "count" }, String(n)))));
  drawTabs();

  const summary = attention.length === 0
    ? h("p", { class: "attention ok" }, "Every connection you can see is working.")
    : h("p", { class: "attention" }, h("strong", null, "Needs attention: "),
      attentionStatuses.filter((s) => counts[s] > 0).map((s, i) => [i ? ", " : "", h("button", {
        type: "button", class: "link", "data-attention": s,
        onclick: () => { state.tab = "attention"; state.status = s; listView(main, ctx); },
      }, `${counts[s]} ${statusWords[s].toLowerCase()}`)]));

  const typeOptions = /** @type {[string, string][]} */ ([...ctx.types.values()].map((t) => [t.id, t.name]));
  replace(main,
    h("div", { class: "title-row" }, h("h1", null, "Connections"),
      h("a", { class: "button primary", href: "#/new" }, "New connection")),
    summary,
    tabs,
    h("div", { class: "filters" },
      h("div", { class: "filter grow" }, h("label", { for: "filter-q" }, "Search by name"), search),
      select("filter-type", "Type", "type", typeOptions),
      select("filter-status", "Status", "status", Object.entries(statusWords)),
      select("filter-scope", "Available to", "scope", [["tenant", "Tenant"], ["siteCollection", "Site collection"], ["site", "Site"], ["personal", "Only its creator"]])),
    body,
    all.truncated ? h("p", { class: "muted" }, `Showing the first ${items.length} connections.`) : null);

  function draw() {
    const q = state.q.trim().toLowerCase();
    const shown = items.filter((c) =>
      (state.tab === "attention" ? /** @type {readonly string[]} */ (attentionStatuses).includes(c.status) : c.kind === state.tab) &&
      (!state.type || c.type === state.type) &&
      (!state.status || c.status === state.status) &&
      (!state.scope || c.availability.scope === state.scope) &&
      (!q || c.name.toLowerCase().includes(q)));
    if (shown.length === 0) {
      const none = items.length === 0 ? "There are no connections you can see yet."
        : state.tab === "attention" && !q && !state.type && !state.status && !state.scope ? "Nothing needs attention."
          : "No connection matches.";
      replace(body, h("p", { class: "empty" }, none));
      return;
    }
    replace(body, h("table", { class: "connections" },
      h("caption", { class: "visually-hidden" }, `${shown.length} connection${shown.length === 1 ? "" : "s"}`),
      h("thead", null, h("tr", null, ["Name", "Type", "Available to", "Owners", "Status", "Last used"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, shown.map((c) => h("tr", { "data-id": c.id },
        h("th", { scope: "row" }, h("a", { href: `#/connections/${encodeURIComponent(c.id)}` }, c.name)),
        h("td", null, ctx.types.get(c.type)?.name ?? c.type),
        h("td", null, describeAvailability(c.availability)),
        h("td", null, c.owners.join(", ")),
        h("td", null, statusBadge(c), c.statusReason && c.status !== "active" ? h("span", { class: "reason" }, reasonText(c.statusReason)) : null),
        h("td", null, time(c.lastUsedAt, "Never")))))));
  }
  draw();
}
