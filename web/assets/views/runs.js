// Workflow runs: the suspended ones first, each with the connection it
// waits on, why, and a countdown to its termination; resume, terminate
// and rebind to another connection.

import { h, replace, time, duration, openDialog } from "../dom.js";
import { explain } from "../api.js";
import { reasonText } from "../rules.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").Run} Run */
/** @typedef {import("../../types/api").Connection} Connection */

/** @type {Record<string, string>} */
const statusWords = { running: "Running", suspended: "Suspended", succeeded: "Succeeded", failed: "Failed", terminated: "Terminated" };

/**
 * @param {HTMLElement} main
 * @param {Ctx} ctx
 */
export async function runsView(main, ctx) {
  /** @type {Run[]} */
  let suspended;
  /** @type {Run[]} */
  let runs;
  let truncated;
  /** @type {Map<string, Connection>} */
  const conns = new Map();
  try {
    // Every suspended run, whatever the number of runs (the API's status
    // filter, every page); the others only as far as the first pages go.
    const [s, r] = await Promise.all([ctx.api.all("/runs", { status: "suspended" }, 5000), ctx.api.all("/runs", {}, 1000)]);
    suspended = s.items.filter((x) => x.suspension);
    runs = r.items;
    truncated = r.truncated;
    // The connections they wait on, each read once; one that is gone (or
    // hidden from the caller) is said so.
    const ids = [...new Set(suspended.map((x) => x.suspension?.connection ?? ""))].filter(Boolean);
    const got = await Promise.all(ids.map((id) => ctx.api.call("GET", `/connections/${encodeURIComponent(id)}`).then((a) => a.data, () => null)));
    for (const c of got) if (c) conns.set(c.id, c);
  } catch (e) {
    replace(main, h("h1", null, "Runs"), h("p", { class: "notice error", role: "alert" }, explain(e, "list the runs")));
    return;
  }
  suspended.sort((a, b) => Date.parse(a.suspension?.terminatesAt ?? "") - Date.parse(b.suspension?.terminatesAt ?? ""));
  const others = runs.filter((r) => r.status !== "suspended")
    .sort((a, b) => (a.status === "running" ? 0 : 1) - (b.status === "running" ? 0 : 1) || Date.parse(b.updatedAt) - Date.parse(a.updatedAt))
    .slice(0, 100);
  const dialog = h("dialog", { id: "run-dialog", "aria-labelledby": "run-dialog-title" });
  const here = "#/runs";

  /** @param {string} id */
  const connLabel = (id) => {
    const c = conns.get(id);
    return c ? h("a", { href: `#/connections/${encodeURIComponent(c.id)}` }, c.name) : h("span", null, `${id} (deleted, or not visible to you)`);
  };

  /**
   * @param {Run} r
   * @param {string} action
   * @param {unknown} body
   * @param {string} done
   * @param {string} what
   */
  async function act(r, action, body, done, what) {
    try {
      await ctx.api.call("POST", `/runs/${encodeURIComponent(r.id)}/${action}`, { body });
      if (dialog.open) dialog.close();
      ctx.go(here, done);
    } catch (e) {
      const msg = explain(e, what);
      if (dialog.open) {
        const p = dialog.querySelector(".form-error");
        if (p) p.textContent = msg;
      } else {
        ctx.go(here, msg, "error");
      }
    }
  }

  /** @param {Run} r */
  function confirmTerminate(r) {
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    replace(dialog, h("h2", { id: "run-dialog-title" }, `Terminate the run of ${r.workflowId}?`),
      h("p", null, "It ends now and cannot be resumed."), h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "actions" }, h("button", { type: "button", class: "danger", id: "confirm-terminate",
        onclick: () => act(r, "terminate", undefined, "Terminated.", "terminate the run") }, "Terminate"), cancel));
    openDialog(dialog);
    cancel.focus();
  }

  /** @param {Run} r */
  async function rebind(r) {
    const from = r.suspension?.connection ?? "";
    let usable;
    try {
      usable = (await ctx.api.all("/connections", { usableAt: r.site })).items;
    } catch (e) {
      replace(dialog, h("h2", { id: "run-dialog-title" }, `Use another connection for ${r.workflowId}`),
        h("p", { class: "notice error", role: "alert" }, explain(e, "list the connections this run may use")),
        h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Close")));
      openDialog(dialog);
      return;
    }
    const choices = usable.filter((c) => c.id !== from);
    const select = h("select", { id: "rebind-to" }, choices.map((c) => h("option", { value: c.id }, `${c.name} (${c.kind})`)));
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    replace(dialog, h("h2", { id: "run-dialog-title" }, `Use another connection for ${r.workflowId}`),
      h("p", null, "The run's remaining steps that use ", connLabel(from), " will use the connection you choose, and the run resumes."),
      choices.length
        ? h("div", { class: "field" }, h("label", { for: "rebind-to" }, "Connection"), select)
        : h("p", null, "There is no other connection you can use on this run's site."),
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "actions" },
        choices.length ? h("button", { type: "button", class: "primary", id: "confirm-rebind",
          onclick: () => act(r, "rebind", { from, to: select.value }, "Rebound: the run resumed with the other connection.", "rebind the run") }, "Rebind and resume") : null,
        cancel));
    openDialog(dialog);
    (choices.length ? select : cancel).focus();
  }

  const countdowns = /** @type {HTMLElement[]} */ ([]);
  const tick = () => {
    for (const el of countdowns) {
      const left = Date.parse(el.dataset.terminates ?? "") - ctx.now();
      el.textContent = left > 0 ? `Terminates in ${duration(left)}` : "Terminating now";
    }
  };

  replace(main,
    h("div", { class: "title-row" }, h("h1", null, "Runs"), h("button", { type: "button", id: "refresh-runs", onclick: () => ctx.go(here) }, "Refresh")),
    h("section", { "aria-labelledby": "h-suspended" },
      h("h2", { id: "h-suspended" }, `Suspended (${suspended.length})`),
      suspended.length === 0 ? h("p", { class: "muted" }, "No run is waiting for a fix.") : h("ul", { class: "cards" }, suspended.map((r) => {
        const s = /** @type {NonNullable<Run["suspension"]>} */ (r.suspension);
        const cd = h("strong", { class: "countdown", "data-terminates": s.terminatesAt });
        countdowns.push(cd);
        return h("li", { class: "card", "data-run": r.id },
          h("h3", null, `${r.workflowId} on ${r.site}`),
          h("p", null, "Waiting on ", connLabel(s.connection), ": ", reasonText(s.reason), "."),
          h("p", null, cd, " (", time(s.terminatesAt), "). Started by ", r.owner, ", suspended ", time(s.suspendedAt), "."),
          h("p", { class: "help" }, "Fix the connection (new credentials or a reconnect) and the run resumes by itself; or act here."),
          h("div", { class: "actions" },
            h("button", { type: "button", class: "primary", "data-action": "resume", "aria-label": `Resume ${r.workflowId}`,
              onclick: () => act(r, "resume", undefined, "Resumed: the waiting step runs again.", "resume the run") }, "Resume"),
            h("button", { type: "button", "data-action": "rebind", "aria-label": `Rebind ${r.workflowId}`, onclick: () => rebind(r) }, "Rebind…"),
            h("button", { type: "button", class: "danger", "data-action": "terminate", "aria-label": `Terminate ${r.workflowId}`, onclick: () => confirmTerminate(r) }, "Terminate…")));
      }))),
    h("section", { "aria-labelledby": "h-other" },
      h("h2", { id: "h-other" }, "Other runs"),
      others.length === 0 ? h("p", { class: "muted" }, "No other runs.") : h("table", null,
        h("caption", { class: "visually-hidden" }, "Runs that are not suspended, running first"),
        h("thead", null, h("tr", null, ["Workflow", "Site", "Started by", "Status", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, others.map((r) => h("tr", { "data-run": r.id },
          h("th", { scope: "row" }, r.workflowId), h("td", null, r.site), h("td", null, r.owner),
          h("td", null, h("span", { class: `badge r-${r.status}` }, statusWords[r.status] ?? r.status), r.reason ? h("span", { class: "reason" }, reasonText(r.reason)) : null),
          h("td", null, time(r.updatedAt)))))),
      truncated ? h("p", { class: "muted" }, "Only the first 1000 runs were read for this list; every suspended run is above.") : null),
    dialog);
  tick();
  const timer = setInterval(tick, 1000);
  ctx.onLeave(() => clearInterval(timer));
}

