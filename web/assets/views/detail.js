// One connection: status and its reason, test, reconnect, settings,
// credentials (set or not, and "replace credentials"), availability and
// owners, where it is used, its audit timeline, and delete, showing what
// it would break first. Controls appear only where the connection's
// `permissions` allow them.

import { h, append, replace, time, announce, openDialog } from "../dom.js";
import { explain, ApiError } from "../api.js";
import { SchemaFields, clearErrors, field, label, showFieldError } from "../form.js";
import { describeAvailability, reasonText } from "../rules.js";
import { authorize } from "../oauth.js";
import { availabilityPicker } from "./create.js";
import { statusBadge } from "./list.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").Connection} Connection */
/** @typedef {import("../../types/api").UsagePage} UsagePage */
/** @typedef {import("../../types/api").AuditEntry} AuditEntry */
/** @typedef {import("../../types/api").Permission} Permission */

/** @type {Record<string, string>} */
const actionWords = {
  "connection.created": "Created",
  "connection.updated": "Changed",
  "connection.credentials_changed": "Replaced the credentials",
  "connection.availability_changed": "Changed where it is available",
  "connection.owners_changed": "Changed the owners",
  "connection.deleted": "Deleted",
  "connection.authorized": "Authorized",
  "connection.expiring": "Started expiring",
  "connection.expired": "Expired",
  "connection.recovered": "Working again",
};

/**
 * @param {HTMLElement} main
 * @param {Ctx} ctx
 * @param {string} id
 */
export async function detailView(main, ctx, id) {
  const path = `/connections/${encodeURIComponent(id)}`;
  let got;
  try {
    got = await ctx.api.call("GET", path);
  } catch (e) {
    replace(main, h("h1", null, "Connection"), h("p", { class: "notice error", role: "alert" }, explain(e, "show this connection")),
      h("p", null, h("a", { href: "#/" }, "Back to the connections")));
    return;
  }
  /** @type {Connection} */
  const c = got.data;
  const etag = got.etag;
  const type = ctx.types.get(c.type);
  /** @param {Permission} p */
  const may = (p) => c.permissions.includes(p);
  const here = `#/connections/${encodeURIComponent(id)}`;

  /**
   * Sends a write pinned to the version shown; a stale version (412) or a
   * success shows the connection again.
   * @param {string} method
   * @param {string} sub
   * @param {unknown} body
   * @param {string} what
   * @param {string} done
   * @param {HTMLElement} [form] where field errors go
   */
  async function write(method, sub, body, what, done, form) {
    try {
      await ctx.api.call(method, path + sub, { body, ifMatch: etag });
      ctx.go(here, done);
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        ctx.go(here, explain(e, what), "error");
        return;
      }
      const msg = explain(e, what);
      const err = form?.querySelector(".form-error");
      if (form && e instanceof ApiError && showFieldError(form, e.field, e.message || msg)) {
        if (err) err.textContent = msg;
      } else if (err) {
        err.textContent = msg;
      } else {
        ctx.notify(msg, "error");
      }
    }
  }

  // Status, with what can be done about it.
  const testResult = h("div", { id: "test-result", role: "status" });
  const progress = h("div", { id: "authorize-progress" });
  const expiries = [
    ["Password expires", /** @type {string | undefined} */ (typeof c.settings.passwordExpiresAt === "string" ? c.settings.passwordExpiresAt : undefined)],
    ["Access token expires", c.tokenExpiresAt],
    ["Authorization expires", c.refreshTokenExpiresAt],
    ["Last used by a run", c.lastUsedAt],
  ].filter(([, v]) => v);
  const actions = h("div", { class: "actions" },
    may("test") ? h("button", { type: "button", id: "test", onclick: test }, "Test connection") : null,
    may("authorize") && type?.authMethod === "oauth2AuthorizationCode"
      ? h("button", { type: "button", id: "reconnect", class: c.status === "active" ? null : "primary", onclick: reconnect }, "Reconnect") : null,
    may("edit") ? h("button", { type: "button", id: "toggle-disabled", onclick: () => write("PATCH", "", { disabled: !c.disabled },
      c.disabled ? "enable the connection" : "disable the connection", c.disabled ? "Enabled." : "Disabled: no run or test may use it.") },
    c.disabled ? "Enable" : "Disable") : null,
    may("delete") ? h("button", { type: "button", id: "delete", class: "danger", onclick: confirmDelete }, "Delete…") : null);

  async function test() {
    replace(testResult, h("p", { class: "muted" }, "Testing…"));
    try {
      const { data } = await ctx.api.call("POST", `${path}/test`);
      replace(testResult, h("p", { class: `notice ${data.ok ? "ok" : "error"}` },
        h("strong", null, data.ok ? "The test passed. " : "The test failed. "), data.message,
        data.status ? ` (the host answered ${data.status})` : ""));
      announce(data.ok ? "The test passed." : "The test failed.");
    } catch (e) {
      replace(testResult, h("p", { class: "notice error" }, explain(e, "test the connection")));
    }
  }

  async function reconnect() {
    try {
      const { data } = await ctx.api.call("POST", `${path}/authorize`);
      const done = await authorize(ctx, id, data.authorizeUrl, c.version, progress);
      if (done) ctx.go(here, "Reconnected: the provider authorized the connection.");
    } catch (e) {
      ctx.notify(explain(e, "reconnect the connection"), "error");
    }
  }

  const statusSection = h("section", { "aria-labelledby": "h-status" },
    h("h2", { id: "h-status" }, "Status"),
    h("p", { class: "status-line" }, statusBadge(c),
      c.statusReason && c.status !== "active" ? h("span", { class: "reason" }, " ", reasonText(c.statusReason)) : null),
    expiries.length ? h("dl", { class: "facts" }, expiries.map(([k, v]) => [h("dt", null, k), h("dd", null, time(v))])) : null,
    actions, testResult, progress);

  // Name.
  let nameSection = null;
  if (may("edit")) {
    const name = h("input", { type: "text", id: "edit-name", value: c.name, maxlength: 128, autocomplete: "off" });
    const form = h("form", { novalidate: true, class: "inline", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      clearErrors(form);
      write("PATCH", "", { name: name.value.trim() }, "rename the connection", "Renamed.", form);
    } }, field({ field: "name", label: "Name", control: name, required: true }),
    h("button", { type: "submit" }, "Rename"), h("p", { class: "form-error", role: "alert" }));
    nameSection = h("section", { "aria-labelledby": "h-name" }, h("h2", { id: "h-name" }, "Name"), form);
  }

  // Settings and credentials.
  const settingsSchema = type?.settingsSchema ?? { properties: Object.fromEntries(Object.keys(c.settings).map((k) => [k, {}])) };
  /** @type {SchemaFields | null} */
  let settings = null;
  let settingsBody;
  if (may("configure") && type) {
    settings = new SchemaFields("settings", settingsSchema, c.settings);
    const s = settings;
    const form = h("form", { novalidate: true, id: "settings-form", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      clearErrors(form);
      const patch = s.patch();
      if (!patch) {
        const err = form.querySelector(".form-error");
        if (err) err.textContent = "Nothing changed.";
        return;
      }
      write("PATCH", "", { settings: patch }, "save the settings", "Settings saved.", form);
    } }, settings.element, h("p", { class: "form-error", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save settings")));
    settingsBody = form;
  } else {
    const keys = Object.keys(c.settings);
    settingsBody = keys.length
      ? h("dl", { class: "facts" }, keys.map((k) => [h("dt", null, label(k)), h("dd", null, JSON.stringify(c.settings[k]).replace(/^"|"$/g, ""))]))
      : h("p", { class: "muted" }, "No settings.");
  }

  const credFields = Object.keys(type?.credentialsSchema.properties ?? c.credentials);
  const credBox = h("div", { id: "replace-credentials" });
  let credSection = null;
  if (credFields.length) {
    credSection = h("section", { "aria-labelledby": "h-creds" }, h("h2", { id: "h-creds" }, "Credentials"),
      h("dl", { class: "facts" }, credFields.map((k) => [h("dt", null, label(k)), h("dd", null, c.credentials[k] ? "Set" : "Not set")])),
      h("p", { class: "help" }, "Stored values are never shown, to anyone."),
      may("configure") && type ? h("button", { type: "button", id: "replace-credentials-button", "aria-expanded": "false", onclick: openReplace }, "Replace credentials") : null,
      credBox);
  }

  function openReplace() {
    if (!type) return;
    const btn = document.getElementById("replace-credentials-button");
    btn?.setAttribute("aria-expanded", "true");
    const creds = new SchemaFields("credentials", type.credentialsSchema);
    const form = h("form", { novalidate: true, id: "credentials-form", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      clearErrors(form);
      const missing = creds.missing();
      if (missing.length) {
        for (const [f, m] of missing.reverse()) showFieldError(form, f, m);
        return;
      }
      /** @type {Record<string, unknown>} */
      const body = { credentials: creds.read() };
      // A settings change waiting in the form above goes with them (a new
      // host needs new credentials in the same change).
      const patch = settings?.patch();
      if (patch) body.settings = patch;
      write("PATCH", "", body, "replace the credentials", patch ? "Credentials and settings saved." : "Credentials replaced.", form);
    } }, h("p", { class: "help" }, "The new values replace every stored credential of this connection. Runs suspended on it resume."),
    creds.element, h("p", { class: "form-error", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save credentials"),
      h("button", { type: "button", onclick: () => { replace(credBox); btn?.setAttribute("aria-expanded", "false"); btn?.focus(); } }, "Cancel")));
    replace(credBox, form);
    /** @type {HTMLElement | null} */ (form.querySelector("input"))?.focus();
  }

  // Availability and owners.
  /** @type {HTMLElement} */
  let availBody = h("p", { id: "availability-now" }, describeAvailability(c.availability));
  if (c.kind === "shared" && may("changeAvailability")) {
    const picker = availabilityPicker(ctx.session.claims, "edit-availability", c.availability, "Change to");
    const form = h("form", { novalidate: true, id: "availability-form", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      clearErrors(form);
      const v = picker.read();
      if (!v) return;
      write("PUT", "/availability", v, "change where it is available", "Availability changed.", form);
    } }, h("p", null, "Now: ", h("span", { id: "availability-now" }, describeAvailability(c.availability))), picker.element, h("p", { class: "form-error", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Change availability")));
    availBody = form;
  }
  const ownersList = h("ul", { class: "owners" }, c.owners.map((o) => h("li", null, o,
    c.kind === "shared" && may("changeOwners") && c.owners.length > 1
      ? h("button", { type: "button", class: "link", "aria-label": `Remove owner ${o}`,
        onclick: () => write("PUT", "/owners", { owners: c.owners.filter((x) => x !== o) }, "change the owners", `Removed ${o}.`) }, "Remove")
      : null)));
  /** @type {HTMLFormElement | null} */
  let ownerForm = null;
  if (c.kind === "shared" && may("changeOwners")) {
    const add = h("input", { type: "text", id: "add-owner", autocomplete: "off", spellcheck: "false" });
    const form = h("form", { novalidate: true, class: "inline", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      clearErrors(form);
      const v = add.value.trim();
      if (!v) return;
      write("PUT", "/owners", { owners: [...c.owners, v] }, "add the owner", `Added ${v} as an owner.`, form);
    } }, field({ field: "owners", label: "Add an owner (user id)", control: add }), h("button", { type: "submit" }, "Add owner"),
    h("p", { class: "form-error", role: "alert" }));
    ownerForm = form;
  }

  // Usage and audit load beside the rest.
  const usageBody = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const auditBody = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const timeline = h("ol", { class: "timeline", id: "activity" });
  const dialog = h("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title" });

  replace(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Connections"), " / "),
    h("h1", null, c.name),
    h("p", { class: "muted" }, `${type?.name ?? c.type} · ${c.kind === "shared" ? "shared" : "personal"} · created by ${c.createdBy} `, time(c.createdAt)),
    statusSection,
    nameSection,
    h("section", { "aria-labelledby": "h-settings" }, h("h2", { id: "h-settings" }, "Settings"), settingsBody),
    credSection,
    h("section", { "aria-labelledby": "h-avail" }, h("h2", { id: "h-avail" }, "Available to"), availBody),
    h("section", { "aria-labelledby": "h-owners" }, h("h2", { id: "h-owners" }, "Owners"), ownersList, ownerForm),
    h("section", { "aria-labelledby": "h-usage" }, h("h2", { id: "h-usage" }, "Where it is used"), usageBody),
    h("section", { "aria-labelledby": "h-audit" }, h("h2", { id: "h-audit" }, "Activity"), auditBody),
    dialog);

  /** @type {UsagePage | null} */
  let usage = null;
  loadUsage();
  loadAudit();

  // Every page of the usage: delete must say all it would break.
  async function loadUsage() {
    try {
      /** @type {UsagePage} */
      const all = { items: [], hidden: 0 };
      let cursor;
      do {
        const { data } = await ctx.api.call("GET", `${path}/usage`, { query: { limit: "100", cursor } });
        all.items.push(...data.items);
        all.hidden += data.hidden ?? 0;
        cursor = data.nextCursor;
      } while (cursor && all.items.length < 1000);
      if (cursor) all.nextCursor = cursor;
      usage = all;
      replace(usageBody, usageTable(all));
    } catch (e) {
      replace(usageBody, h("p", { class: "notice error" }, explain(e, "show where it is used")));
    }
  }

  /** @param {UsagePage} u */
  function usageTable(u) {
    if (u.items.length === 0 && !u.hidden) return h("p", { class: "muted" }, "No workflow has used it yet.");
    return h("div", null,
      u.items.length ? h("table", null,
        h("caption", { class: "visually-hidden" }, "Workflows and runs using this connection"),
        h("thead", null, h("tr", null, ["What", "Workflow", "Site", "Owner", "Status", "When"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, u.items.map((i) => h("tr", null,
          h("td", null, i.kind === "run" ? "Run now" : "Workflow"),
          h("td", null, i.workflowId), h("td", null, i.site), h("td", null, i.owner),
          h("td", null, i.status, i.reason ? ` (${reasonText(i.reason)})` : ""),
          h("td", null, time(i.at)))))) : null,
      u.hidden ? h("p", { class: "muted" }, `${u.hidden} more you may not see.`) : null,
      u.nextCursor ? h("p", { class: "muted" }, `Showing the first ${u.items.length}; there are more.`) : null,
      u.items.some((i) => i.status === "suspended") ? h("p", null, h("a", { href: "#/runs" }, "See the suspended runs")) : null);
  }

  // The timeline, newest first, a page at a time.
  /** @param {string} [cursor] */
  async function loadAudit(cursor) {
    const older = auditBody.querySelector("#older-activity");
    try {
      const { data } = await ctx.api.call("GET", `${path}/audit`, { query: { limit: "50", cursor } });
      /** @type {AuditEntry[]} */
      const items = data.items;
      const first = timeline.children.length;
      append(timeline, items.map((a) => h("li", { tabindex: -1 },
        time(a.at), " ", h("strong", null, actionWords[a.action] ?? a.action), ` by ${a.actor}`,
        a.changes?.length ? h("span", { class: "muted" }, `: ${a.changes.join(", ")}`) : null,
        a.details && Object.keys(a.details).length ? h("span", { class: "muted" }, ` (${Object.entries(a.details).map(([k, v]) => `${k} ${v}`).join("; ")})`) : null)));
      const next = data.nextCursor;
      replace(auditBody, timeline.children.length ? timeline : h("p", { class: "muted" }, "No activity recorded."),
        next ? h("button", { type: "button", id: "older-activity", onclick: () => loadAudit(next) }, "Show older activity") : null);
      // Whoever asked for more goes on reading at the first new entry.
      if (older) /** @type {HTMLElement | undefined} */ (timeline.children[first])?.focus();
    } catch (e) {
      replace(auditBody, timeline.children.length ? timeline : null, h("p", { class: "notice error" }, explain(e, "show the activity")));
    }
  }

  // Delete: what it would break first, then the confirmation; runs still
  // on it (409 connection_in_use) need a second, explicit confirmation.
  function confirmDelete() {
    const runs = (usage?.items ?? []).filter((i) => i.kind === "run");
    const msg = h("div", { id: "delete-impact" });
    const problem = h("p", { class: "form-error", role: "alert" });
    const go = h("button", { type: "button", class: "danger", id: "confirm-delete" }, "Delete");
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    const atLeast = usage?.nextCursor ? "At least " : "";
    replace(msg, runs.length || usage?.hidden
      ? [h("p", null, `${atLeast}${runs.length + (usage?.hidden ?? 0)} run(s) use it now. They will stay suspended (the connection was deleted) until someone points them at another connection, or they terminate after 10 days:`),
        impactList(runs)]
      : h("p", null, (usage?.items.length ?? 0) > 0
        ? `No run uses it right now, but ${usage?.items.length} workflow(s) have used it and will fail to authenticate.`
        : "No workflow has used it."));
    let force = false;
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        await ctx.api.call("DELETE", path, { ifMatch: etag, query: force ? { force: "true" } : {} });
        dialog.close();
        ctx.go("#/", `Deleted ${c.name}.`);
      } catch (e) {
        go.disabled = false;
        if (e instanceof ApiError && e.code === "connection_in_use" && !force) {
          force = true;
          const d = /** @type {import("../../types/api").InUseDetails} */ (e.details ?? {});
          replace(msg, h("p", null, explain(e), " Deleting it anyway suspends these runs until they are rebound:"),
            impactList((d.runs ?? []).map((r) => ({ runId: r.id ?? r.runId ?? "", workflowId: r.workflowId ?? "", site: r.site ?? "", status: r.status ?? "" }))),
            d.hidden ? h("p", null, `and ${d.hidden} run(s) you may not see.`) : null);
          go.textContent = "Delete anyway";
          go.focus();
          return;
        }
        if (e instanceof ApiError && e.status === 412) {
          dialog.close();
          ctx.go(here, explain(e, "delete the connection"), "error");
          return;
        }
        problem.textContent = explain(e, "delete the connection");
      }
    });
    replace(dialog, h("h2", { id: "delete-title" }, `Delete ${c.name}?`), msg, problem, h("div", { class: "actions" }, go, cancel));
    openDialog(dialog);
    cancel.focus();
  }
}

/** @param {{ runId: string, workflowId: string, site: string, status: string }[]} runs */
function impactList(runs) {
  return h("ul", { class: "impact" }, runs.map((r) => h("li", null,
    `Workflow ${r.workflowId} on ${r.site}: run ${r.runId} (${r.status})`)));
}
