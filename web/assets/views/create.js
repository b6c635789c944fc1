// Create a connection: the type from the catalogue, a form generated from
// its JSON Schemas, who may use it (availability only within the caller's
// authority, defaulting as the rules say), and for OAuth types the round
// trip to the provider.

import { h, replace, randomId } from "../dom.js";
import { explain } from "../api.js";
import { SchemaFields, clearErrors, field, showFieldError } from "../form.js";
import { availabilityChoices, canCreateShared } from "../rules.js";
import { authorize } from "../oauth.js";

/** @typedef {import("../../types/page").Ctx} Ctx */
/** @typedef {import("../../types/api").Availability} Availability */
/** @typedef {import("../../types/api").ConnectionType} ConnectionType */

/**
 * The availability picker of a shared connection.
 * @param {import("../../types/api").Claims} claims
 * @param {string} name the radio group's name
 * @param {Availability | null} [current] preselected (detail view)
 * @param {string} [legend]
 * @returns {{ element: HTMLElement, read(): Availability | null | undefined }}
 *   read: the choice; undefined for "the default" (the preset, unchanged); null when none is chosen
 */
export function availabilityPicker(claims, name, current = null, legend = "Available to") {
  const { choices, custom, preset } = availabilityChoices(claims);
  const selected = current ?? preset;
  /** @type {{ radio: HTMLInputElement, value: () => Availability | null }[]} */
  const options = [];
  const same = (/** @type {Availability | null} */ a, /** @type {Availability | null} */ b) =>
    !!a && !!b && a.scope === b.scope && (a.site ?? "") === (b.site ?? "") && (a.siteCollection ?? "") === (b.siteCollection ?? "");
  const rows = choices.map((c, i) => {
    const radio = h("input", { type: "radio", name, id: `${name}-${i}`, checked: same(c.value, selected) });
    options.push({ radio, value: () => c.value });
    return h("div", { class: "radio" }, radio, h("label", { for: radio.id }, c.label, same(c.value, preset) && !current ? " (default)" : ""));
  });
  custom.forEach((c, i) => {
    const isCurrent = !!current && current.scope === c.scope && !choices.some((x) => same(x.value, current));
    const radio = h("input", { type: "radio", name, id: `${name}-c${i}`, checked: isCurrent });
    const path = h("input", { type: "text", id: `${name}-c${i}-path`, spellcheck: "false", autocomplete: "off",
      value: isCurrent ? (c.scope === "site" ? current?.site : current?.siteCollection) ?? "" : c.within.length === 1 ? c.within[0] + "/" : "/sites/",
      "data-field": c.scope === "site" ? "availability.site" : "availability.siteCollection", "aria-describedby": `${name}-c${i}-path-error` });
    path.addEventListener("focus", () => { radio.checked = true; });
    options.push({ radio, value: () => {
      const v = path.value.trim();
      return c.scope === "site" ? { scope: "site", site: v } : { scope: "siteCollection", siteCollection: v };
    } });
    rows.push(h("div", { class: "radio custom" }, radio, h("label", { for: radio.id }, c.label),
      h("label", { for: path.id, class: "visually-hidden" }, `${c.label}: path`), path,
      h("p", { class: "field-error", id: `${path.id}-error`, hidden: true })));
  });
  const element = h("fieldset", { class: "availability", "data-field": "availability" },
    h("legend", null, legend),
    rows.length ? rows : h("p", null, "You cannot choose an availability."));
  return {
    element,
    read() {
      const o = options.find((x) => x.radio.checked);
      if (!o) return null;
      const v = o.value();
      return !current && preset && same(v, preset) ? undefined : v;
    },
  };
}

/**
 * @param {HTMLElement} main
 * @param {Ctx} ctx
 */
export function createView(main, ctx) {
  const claims = ctx.session.claims;
  const shared = canCreateShared(claims);
  const idempotencyKey = randomId();
  const types = [...ctx.types.values()];
  /** @type {ConnectionType | undefined} */
  let type;
  /** @type {SchemaFields | null} */
  let settings = null;
  /** @type {SchemaFields | null} */
  let credentials = null;

  const typePart = h("div", { class: "type-part" });
  const name = h("input", { type: "text", id: "new-name", autocomplete: "off", maxlength: 128 });
  const kindShared = h("input", { type: "radio", name: "kind", id: "kind-shared", value: "shared", checked: shared, disabled: !shared });
  const kindPersonal = h("input", { type: "radio", name: "kind", id: "kind-personal", value: "personal", checked: !shared });
  const avail = shared ? availabilityPicker(claims, "availability") : null;
  const availWrap = h("div", { hidden: !shared }, avail?.element);
  for (const r of [kindShared, kindPersonal]) r.addEventListener("change", () => { availWrap.hidden = !kindShared.checked; });
  const formError = h("p", { class: "form-error", role: "alert" });
  const progress = h("div", { id: "authorize-progress" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create connection");

  const typeList = h("fieldset", { class: "types" }, h("legend", null, "Type"),
    types.map((t) => {
      const r = h("input", { type: "radio", name: "type", id: `type-${t.id}`, value: t.id });
      r.addEventListener("change", () => pick(t));
      return h("div", { class: "radio type" }, r, h("label", { for: r.id }, h("strong", null, t.name),
        h("span", { class: "help", id: `type-${t.id}-about` }, t.description)));
    }));

  /** @param {ConnectionType} t */
  function pick(t) {
    type = t;
    settings = new SchemaFields("settings", t.settingsSchema);
    const hasCreds = Object.keys(t.credentialsSchema.properties ?? {}).length > 0;
    credentials = hasCreds ? new SchemaFields("credentials", t.credentialsSchema) : null;
    const oauthCode = t.authMethod === "oauth2AuthorizationCode";
    replace(typePart,
      Object.keys(t.settingsSchema.properties ?? {}).length ? h("fieldset", null, h("legend", null, "Settings"), settings.element) : null,
      credentials ? h("fieldset", null, h("legend", null, "Credentials"),
        h("p", { class: "help" }, "Stored encrypted; nobody can read them back, administrators included."), credentials.element) : null,
      oauthCode ? h("p", { class: "help" }, "After you create it, the provider's sign-in page opens in a new window to authorize the connection.") : null,
      t.authMethod === "oauth2ClientCredentials" ? h("p", { class: "help" }, "It uses the OAuth client your tenant administrator registered for this type.") : null);
    submit.textContent = oauthCode ? "Create and authorize" : "Create connection";
  }

  const form = h("form", { class: "create", novalidate: true, onsubmit: onSubmit },
    typeList,
    field({ field: "name", label: "Name", control: name, required: true, help: "How people will recognise it, e.g. Payroll API." }),
    h("fieldset", { class: "kind" }, h("legend", null, "Who can use it"),
      h("div", { class: "radio" }, kindShared, h("label", { for: kindShared.id }, "Shared: workflows on the sites it is available to")),
      h("div", { class: "radio" }, kindPersonal, h("label", { for: kindPersonal.id }, "Personal: only you, in your own workflows")),
      shared ? null : h("p", { class: "help" }, "Only tenant administrators, site collection administrators and site owners create shared connections.")),
    availWrap,
    typePart,
    formError,
    h("div", { class: "actions" }, submit, h("a", { href: "#/", class: "button" }, "Cancel")),
    progress);

  replace(main, h("h1", null, "New connection"), form);

  /** @param {Event} e */
  async function onSubmit(e) {
    e.preventDefault();
    clearErrors(form);
    if (!type) {
      formError.textContent = "Choose a type.";
      /** @type {HTMLInputElement | null} */ (typeList.querySelector("input"))?.focus();
      return;
    }
    /** @type {[string, string][]} */
    const missing = [];
    if (!name.value.trim()) missing.push(["name", "Give it a name."]);
    missing.push(...(settings?.missing() ?? []), ...(credentials?.missing() ?? []));
    const kind = kindShared.checked ? "shared" : "personal";
    const availability = kind === "shared" ? avail?.read() : undefined;
    if (kind === "shared" && availability === null) missing.push(["availability", "Choose where it is available."]);
    if (missing.length) {
      for (const [f, m] of missing.reverse()) if (!showFieldError(form, f, m)) formError.textContent = m;
      formError.textContent ||= "Some fields need your attention.";
      return;
    }
    /** @type {Record<string, unknown>} */
    const body = { type: type.id, name: name.value.trim(), kind, settings: settings?.read() ?? {}, credentials: credentials?.read() ?? {} };
    if (availability) body.availability = availability;
    submit.disabled = true;
    try {
      const { data } = await ctx.api.call("POST", "/connections", { body, idempotencyKey });
      if (data.authorizeUrl) {
        const done = await authorize(ctx, data.id, data.authorizeUrl, data.version, progress);
        ctx.go(`#/connections/${encodeURIComponent(data.id)}`,
          done ? `Created and authorized ${data.name}.` : `Created ${data.name}; it still waits for an authorization.`, done ? "ok" : "error");
        return;
      }
      ctx.go(`#/connections/${encodeURIComponent(data.id)}`, `Created ${data.name}.`);
    } catch (err) {
      submit.disabled = false;
      const msg = explain(err, "create the connection");
      const f = /** @type {any} */ (err).field;
      if (!showFieldError(form, f, /** @type {Error} */ (err).message || msg)) formError.textContent = msg;
      else formError.textContent = "The service did not accept a field: see the message beside it.";
    }
  }
}
