// The connections list: Shared and Personal tabs, the "needs attention"
// view with its counts, filters by type, status and scope, and search by
// name. Type, status and scope are the list API's own filters, so the
// service narrows the list before any page is sent; every page of the
// answer is loaded (the API pages by 100), and the counts come from
// queries of their own, so nothing is missed past the first page. Search
// by name runs on what was loaded: the API has no name filter.

import { h, replace, time } from "../dom.js";
import { explain } from "../api.js";
import { attentionStatuses, describeAvailability, reasonText, statusWords } from "../rules.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").Connection} Connection */

/** The view's state survives moving to a detail and back. */
const state = { tab: /** @type {"shared" | "personal" | "attention"} */ ("shared"), type: "", status: "", scope: "", q: "" };

/** At most this many connections are loaded for one view of the list. */
export const listMax = 2000;

/** @param {string} s */
const isAttention = (s) => /** @type {readonly string[]} */ (attentionStatuses).includes(s);

/**
 * @param {Connection} c
 * @returns {HTMLElement}
 */
export function statusBadge(c) {
  return h("span", { class: `badge s-${c.disabled ? "disabled" : c.status}` }, c.disabled ? "Disabled" : statusWords[c.status] ?? c.status);
}

/**
 * The queries that list the current tab with its filters: each a set of
 * the API's query parameters, and which of its answers belong here.
 * @returns {{ query: Record<string, string>, keep: (c: Connection) => boolean }[]}
 */
function queries() {
  const base = { type: state.type, status: state.status, scope: state.scope };
  switch (state.tab) {
    case "personal":
      return [{ query: { ...base, scope: "personal" }, keep: () => true }];
    case "attention":
      if (state.status) return isAttention(state.status) ? [{ query: base, keep: () => true }] : [];
      return attentionStatuses.map((s) => ({ query: { ...base, status: s }, keep: () => true }));
    default:
      // No kind filter in the API: without a scope, the personal ones
      // are left out here.
      return [{ query: base, keep: (c) => c.kind === "shared" }];
  }
}

/** The last counts, by status, and whether any was cut at listMax. */
let lastCounts = /** @type {{ n: Record<string, number>, cut: boolean } | null} */ (null);

/**
 * @param {HTMLElement} main
 * @param {Ctx} ctx
 * @param {boolean} [sameCounts] keep the counts just made (another tab)
 */
export async function listView(main, ctx, sameCounts = false) {
  if (state.tab === "personal" || (state.tab === "shared" && state.scope === "personal")) state.scope = "";
  const body = h("div", { id: "list-body", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const summary = h("div", { id: "attention-summary" }, h("p", { class: "muted" }, "Counting what needs attention…"));
  const search = h("input", { id: "filter-q", type: "search", value: state.q, autocomplete: "off" });
  let generation = 0;
  /** @type {Connection[]} */
  let items = [];
  let truncated = false;
  let loaded = false;

  /**
   * @param {string} id
   * @param {string} label
   * @param {"type" | "status" | "scope"} key
   * @param {[string, string][]} options
   */
  const select = (id, label, key, options) => {
    const s = h("select", { id }, h("option", { value: "" }, "All"), options.map(([v, l]) => h("option", { value: v, selected: state[key] === v }, l)));
    s.addEventListener("change", () => {
      state[key] = s.value;
      load();
    });
    return h("div", { class: "filter" }, h("label", { for: id }, label), s);
  };
  search.addEventListener("input", () => {
    state.q = search.value;
    draw();
  });

  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Which connections" });
  /** @type {number | null} */
  let attentionCount = null;
  const drawTabs = () => replace(tabs, /** @type {const} */ ([["shared", "Shared"], ["personal", "Personal"], ["attention", "Needs attention"]]).map(([id, label]) => h("button", {
    type: "button", class: `tab${id === "attention" && attentionCount ? " warn" : ""}`, "aria-pressed": String(state.tab === id), "data-tab": id,
    onclick: () => { state.tab = id; listView(main, ctx, true); },
  }, label, id === "attention" && attentionCount !== null ? [" ", h("span", { class: "count" }, String(attentionCount))] : null)));
  drawTabs();

  const typeOptions = /** @type {[string, string][]} */ ([...ctx.types.values()].map((t) => [t.id, t.name]));
  const scopes = /** @type {[string, string][]} */ ([["tenant", "Tenant"], ["siteCollection", "Site collection"], ["site", "Site"], ["personal", "Only its creator"]]);
  replace(main,
    h("div", { class: "title-row" }, h("h1", null, "Connections"),
      h("a", { class: "button primary", href: "#/new" }, "New connection")),
    summary,
    tabs,
    h("div", { class: "filters" },
      h("div", { class: "filter grow" }, h("label", { for: "filter-q" }, "Search by name"), search),
      select("filter-type", "Type", "type", typeOptions),
      select("filter-status", "Status", "status", Object.entries(statusWords)),
      state.tab === "personal" ? null
        : select("filter-scope", "Available to", "scope", state.tab === "shared" ? scopes.slice(0, 3) : scopes)),
    body);

  counts();
  await load();

  // The "needs attention" counts: one query per status, every page.
  async function counts() {
    if (!sameCounts || !lastCounts) {
      let got;
      try {
        got = await Promise.all(attentionStatuses.map((s) => ctx.api.all("/connections", { status: s }, listMax)));
      } catch (e) {
        replace(summary, h("p", { class: "notice error" }, explain(e, "count what needs attention")));
        return;
      }
      lastCounts = { n: Object.fromEntries(attentionStatuses.map((s, i) => [s, got[i].items.length])), cut: got.some((g) => g.truncated) };
    }
    const n = lastCounts.n;
    const more = lastCounts.cut ? "+" : "";
    attentionCount = attentionStatuses.reduce((sum, s) => sum + n[s], 0);
    drawTabs();
    replace(summary, attentionCount === 0
      ? h("p", { class: "attention ok" }, "Every connection you can see is working.")
      : h("p", { class: "attention" }, h("strong", null, "Needs attention: "),
        attentionStatuses.filter((s) => n[s] > 0).map((s, i) => [i ? ", " : "", h("button", {
          type: "button", class: "link", "data-attention": s,
          onclick: () => { state.tab = "attention"; state.status = s; state.scope = ""; listView(main, ctx, true); },
        }, `${n[s]}${more} ${statusWords[s].toLowerCase()}`)])));
  }

  async function load() {
    const mine = ++generation;
    loaded = false;
    body.setAttribute("aria-busy", "true");
    replace(body, h("p", { class: "muted" }, "Loading…"));
    const qs = queries();
    let got;
    try {
      got = await Promise.all(qs.map((q) => ctx.api.all("/connections", q.query, listMax, (n) => {
        if (mine === generation && qs.length === 1) replace(body, h("p", { class: "muted" }, `Loading… ${n} so far`));
      })));
    } catch (e) {
      if (mine !== generation) return;
      body.setAttribute("aria-busy", "false");
      replace(body, h("p", { class: "notice error", role: "alert" }, explain(e, "list the connections")));
      return;
    }
    if (mine !== generation) return; // a later choice of filters won
    items = got.flatMap((g, i) => g.items.filter(qs[i].keep))
      .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : 1));
    truncated = got.some((g) => g.truncated);
    loaded = true;
    body.setAttribute("aria-busy", "false");
    draw();
  }

  function draw() {
    if (!loaded) return;
    const q = state.q.trim().toLowerCase();
    const shown = q ? items.filter((c) => c.name.toLowerCase().includes(q)) : items;
    const filtered = Boolean(q || state.type || state.status || state.scope);
    const more = truncated ? h("p", { class: "muted" }, `Showing the first ${listMax} connections: narrow the list with the filters above.`) : null;
    if (shown.length === 0) {
      const none = !filtered ? (state.tab === "attention" ? "Nothing needs attention." : state.tab === "personal" ? "There are no personal connections you can see." : "There are no shared connections you can see yet.")
        : "No connection matches.";
      replace(body, h("p", { class: "empty" }, none), more);
      return;
    }
    replace(body, h("p", { class: "muted", id: "list-count" }, `${shown.length} connection${shown.length === 1 ? "" : "s"}`),
      h("table", { class: "connections" },
        h("caption", { class: "visually-hidden" }, `${shown.length} connection${shown.length === 1 ? "" : "s"}`),
        h("thead", null, h("tr", null, ["Name", "Type", "Available to", "Owners", "Status", "Last used"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, shown.map((c) => h("tr", { "data-id": c.id },
          h("th", { scope: "row" }, h("a", { href: `#/connections/${encodeURIComponent(c.id)}` }, c.name)),
          h("td", null, ctx.types.get(c.type)?.name ?? c.type),
          h("td", null, describeAvailability(c.availability)),
          h("td", null, c.owners.join(", ")),
          h("td", null, statusBadge(c), c.statusReason && c.status !== "active" ? h("span", { class: "reason" }, reasonText(c.statusReason)) : null),
          h("td", null, time(c.lastUsedAt, "Never")))))),
      more);
  }
}
