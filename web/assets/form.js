// Forms: fields generated from a connection type's JSON Schema, and the
// API's field errors shown beside the field they name.

import { h, humanize, randomId } from "./dom.js";

/** @typedef {import("../types/api").JSONSchema} JSONSchema */
/** @typedef {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} Control */

/**
 * A labelled field: label, control, help text and an error slot. The
 * field attribute is the API's name for it ("settings.baseUrl", "name").
 * @param {{ field: string, label: string, control: Control, help?: string, required?: boolean }} f
 */
export function field(f) {
  const id = f.control.id || `f-${randomId()}`;
  f.control.id = id;
  const described = [];
  let help = null;
  if (f.help) {
    help = h("p", { class: "help", id: `${id}-help` }, f.help);
    described.push(help.id);
  }
  const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  described.push(err.id);
  f.control.setAttribute("aria-describedby", described.join(" "));
  f.control.dataset.field = f.field;
  if (f.required) f.control.setAttribute("aria-required", "true");
  const label = h("label", { for: id }, f.label, f.required ? h("span", { class: "req" }, " (required)") : null);
  const isCheck = f.control instanceof HTMLInputElement && f.control.type === "checkbox";
  return h("div", { class: isCheck ? "field check" : "field", "data-for": f.field },
    isCheck ? [f.control, label] : [label, f.control], help, err);
}

/**
 * Shows message beside the field the API named; false when the form has
 * no such field.
 * @param {HTMLElement} form
 * @param {string | undefined} name
 * @param {string} message
 */
export function showFieldError(form, name, message) {
  if (!name) return false;
  // "settings.scopes[2]" is the scopes field; "credentials" the first credential.
  const base = name.replace(/\[\d+\]$/, "");
  const controls = /** @type {Control[]} */ ([...form.querySelectorAll("[data-field]")]);
  const c = controls.find((x) => x.dataset.field === base) ?? controls.find((x) => (x.dataset.field ?? "").startsWith(base + "."));
  if (!c) return false;
  c.setAttribute("aria-invalid", "true");
  const err = document.getElementById(`${c.id}-error`);
  if (err) {
    // Beside the field, the API's "settings.baseUrl: ..." need not name it.
    err.textContent = message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message;
    err.hidden = false;
  }
  c.focus();
  return true;
}

/**
 * Clears the field errors and the form's own message.
 * @param {HTMLElement} form
 */
export function clearErrors(form) {
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  for (const e of /** @type {NodeListOf<HTMLElement>} */ (form.querySelectorAll(".field-error"))) {
    e.textContent = "";
    e.hidden = true;
  }
  const msg = form.querySelector(".form-error");
  if (msg) msg.textContent = "";
}

/** @type {Record<string, string>} */
const labels = {
  baseUrl: "Base URL", testPath: "Test path", passwordExpiresAt: "Password expires", headerName: "Header name",
  siteUrl: "Site URL", scopes: "Scopes", testUrl: "Test URL", instanceUrl: "Instance URL",
  username: "Username", password: "Password", apiKey: "API key",
};

/** The order fields are shown in (required ones first); others follow. */
const order = ["baseUrl", "siteUrl", "instanceUrl", "headerName", "testPath", "testUrl", "scopes", "passwordExpiresAt", "username", "password", "apiKey"];

/**
 * A setting's or credential's label.
 * @param {string} key
 * @param {JSONSchema} [schema]
 */
export function label(key, schema) {
  return schema?.title ?? labels[key] ?? humanize(key);
}

/**
 * A date-time as a datetime-local input's value, in local time.
 * @param {string} iso
 */
function localValue(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const p = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** @param {JSONSchema} s */
function typeOf(s) {
  return Array.isArray(s.type) ? s.type.find((t) => t !== "null") ?? "string" : s.type ?? "string";
}

/**
 * The fields of one object schema (a type's settings or credentials).
 */
export class SchemaFields {
  /**
   * @param {"settings" | "credentials"} group
   * @param {JSONSchema} schema
   * @param {Record<string, unknown>} [values] current values (settings only)
   */
  constructor(group, schema, values = {}) {
    this.group = group;
    this.schema = schema;
    this.initial = values;
    /** @type {Map<string, { control: Control, schema: JSONSchema }>} */
    this.controls = new Map();
    const required = new Set(schema.required ?? []);
    /** @param {string} k */
    const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length) - (required.has(k) ? 100 : 0);
    const keys = Object.keys(schema.properties ?? {}).sort((a, b) => rank(a) - rank(b));
    this.element = h("div", { class: "fields" }, keys.map((k) => this.#field(k, (schema.properties ?? {})[k], required.has(k))));
  }

  /**
   * @param {string} key
   * @param {JSONSchema} s
   * @param {boolean} required
   */
  #field(key, s, required) {
    const v = this.initial[key];
    const t = typeOf(s);
    /** @type {Control} */
    let control;
    let help = s.description;
    if (Array.isArray(s.enum)) {
      control = h("select", null, required ? null : h("option", { value: "" }, "—"),
        s.enum.map((e) => h("option", { value: String(e), selected: e === v }, String(e))));
    } else if (t === "boolean") {
      control = h("input", { type: "checkbox", checked: v === true });
    } else if (t === "integer" || t === "number") {
      control = h("input", { type: "number", value: v === undefined ? "" : String(v), step: t === "integer" ? "1" : "any" });
    } else if (t === "array") {
      control = h("input", { type: "text", value: Array.isArray(v) ? v.join(" ") : "", autocomplete: "off" });
      help = (help ? help + " " : "") + "Separate them with spaces.";
    } else if (s.format === "date-time") {
      control = h("input", { type: "datetime-local", value: typeof v === "string" ? localValue(v) : "" });
      help = (help ? help + " " : "") + "In your local time.";
    } else if (this.group === "credentials") {
      const visible = /^(user(name)?|login|client_?id)$/i.test(key);
      control = h("input", { type: visible ? "text" : "password", autocomplete: visible ? "off" : "new-password", spellcheck: "false" });
    } else {
      control = h("input", { type: s.format === "uri" ? "url" : "text", value: typeof v === "string" ? v : "", spellcheck: "false",
        autocomplete: "off" });
    }
    this.controls.set(key, { control, schema: s });
    return field({ field: `${this.group}.${key}`, label: label(key, s), control, help, required });
  }

  /**
   * Each field's value, undefined when empty.
   * @returns {Record<string, unknown>}
   */
  read() {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [k, { control, schema }] of this.controls) {
      const t = typeOf(schema);
      if (control instanceof HTMLInputElement && control.type === "checkbox") {
        out[k] = control.checked;
        continue;
      }
      const raw = control.value.trim();
      if (raw === "") continue;
      if (t === "integer" || t === "number") out[k] = Number(raw);
      else if (t === "array") out[k] = raw.split(/[\s,]+/).filter(Boolean);
      else if (schema.format === "date-time") out[k] = new Date(raw).toISOString();
      else out[k] = control instanceof HTMLInputElement && control.type === "password" ? control.value : raw;
    }
    return out;
  }

  /**
   * The required fields left empty, as [field, message] pairs.
   * @returns {[string, string][]}
   */
  missing() {
    const have = this.read();
    return (this.schema.required ?? []).filter((k) => have[k] === undefined)
      .map((k) => [`${this.group}.${k}`, "Fill this in."]);
  }

  /**
   * A JSON merge patch from the initial values to the fields' (null
   * removes a setting); null when nothing changed.
   * @returns {Record<string, unknown> | null}
   */
  patch() {
    const now = this.read();
    /** @type {Record<string, unknown>} */
    const p = {};
    for (const k of this.controls.keys()) {
      const a = this.initial[k], b = now[k];
      if (JSON.stringify(a) === JSON.stringify(b)) continue;
      if (typeof a === "string" && typeof b === "string" && this.controls.get(k)?.schema.format === "date-time" &&
        Math.floor(Date.parse(a) / 60000) === Math.floor(Date.parse(b) / 60000)) continue;
      p[k] = b === undefined ? null : b;
    }
    return Object.keys(p).length ? p : null;
  }
}
