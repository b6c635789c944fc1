// The dev-only panel (shown only when the local runtime's /dev/ routes
// answer): the runtime's clock, which moves time for the whole system,
// and the event log of what the functions put on the bus.

import { h, replace, time } from "../dom.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").BusRecord} BusRecord */

/**
 * @param {HTMLElement} el
 * @param {Ctx} ctx
 * @returns {{ refresh(): void }}
 */
export function devPanel(el, ctx) {
  const now = h("span", { id: "dev-now" });
  const log = h("ul", { class: "events", id: "dev-events", tabindex: 0, "aria-labelledby": "dev-events-title" });
  const problem = h("p", { class: "form-error", role: "alert" });

  /** @param {string} d */
  async function advance(d) {
    const res = await fetch("/dev/clock", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ advance: d }) });
    if (!res.ok) {
      problem.textContent = `The clock did not move (${res.status}).`;
      return;
    }
    problem.textContent = "";
    ctx.refreshDev();
    // The schedules fire on the new time; their events follow shortly.
    setTimeout(() => panel.refresh(), 1500);
  }

  async function refresh() {
    try {
      const [c, e] = await Promise.all([fetch("/dev/clock", { cache: "no-store" }), fetch("/dev/events", { cache: "no-store" })]);
      const clock = await c.json();
      replace(now, time(clock.now));
      /** @type {BusRecord[]} */
      const events = (await e.json()).events ?? [];
      replace(log, events.slice(-30).reverse().map((r) => {
        const d = r.event.detail ?? {};
        return h("li", null, h("strong", null, r.event["detail-type"]), " ",
          typeof d.reason === "string" ? h("span", { class: "muted" }, d.reason, " ") : null,
          typeof d.name === "string" ? `${d.name} ` : null, time(r.event.time));
      }));
      if (events.length === 0) replace(log, h("li", { class: "muted" }, "No events yet."));
    } catch {
      problem.textContent = "The local runtime did not answer.";
    }
  }

  replace(el,
    h("h2", null, "Local development"),
    h("p", null, "Runtime clock: ", now),
    h("div", { class: "actions", role: "group", "aria-label": "Move the clock forward" },
      [["1h1m", "+1 hour"], ["24h", "+1 day"], ["240h1m", "+10 days"]].map(([d, label]) =>
        h("button", { type: "button", "data-advance": d, onclick: () => advance(d) }, label))),
    problem,
    h("h3", { id: "dev-events-title" }, "Events on the bus ", h("button", { type: "button", class: "link", onclick: () => refresh() }, "Refresh")),
    log);
  el.hidden = false;
  const panel = { refresh };
  refresh();
  setInterval(refresh, 5000);
  return panel;
}
