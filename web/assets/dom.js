// DOM helpers: elements are built with h(), never from HTML strings, so no
// value the API returns is ever parsed as markup.

/** @typedef {import("../types/page").Child} Child */
/** @typedef {import("../types/page").Children} Children */

/**
 * Creates an element. Attributes whose value is null, undefined or false
 * are left out; on<event> attributes add listeners.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else if (k === "class") {
      el.className = String(v);
    } else if (k === "value" && (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement)) {
      el.value = String(v);
    } else if (k === "checked" && el instanceof HTMLInputElement) {
      el.checked = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} el
 * @param {Children[]} children
 */
export function append(el, children) {
  for (const c of /** @type {Child[]} */ (/** @type {unknown[]} */ (children).flat(Infinity))) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/**
 * Replaces an element's children.
 * @param {Element} el
 * @param {...Children} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * The element with this id (the page's fixed regions).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

/**
 * Says msg to screen readers through the page's live region.
 * @param {string} msg
 */
export function announce(msg) {
  const live = byId("live");
  live.textContent = "";
  // A fresh text node is announced even when msg repeats.
  setTimeout(() => { live.textContent = msg; }, 50);
}

/** A random id, for element ids and idempotency keys. */
export function randomId() {
  return crypto.randomUUID();
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/**
 * A timestamp as people read it, in a <time> element.
 * @param {string | undefined} iso
 * @param {string} [none]
 */
export function time(iso, none = "—") {
  if (!iso) return h("span", { class: "muted" }, none);
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", null, iso);
  return h("time", { datetime: iso, title: d.toISOString() }, dateFormat.format(d));
}

/**
 * How long ms is, in words: "9 days 23 hours", "5 minutes".
 * @param {number} ms
 */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  /** @type {(n: number, unit: string) => string} */
  const u = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (d > 0) return hr > 0 ? `${u(d, "day")} ${u(hr, "hour")}` : u(d, "day");
  if (hr > 0) return m > 0 ? `${u(hr, "hour")} ${u(m, "minute")}` : u(hr, "hour");
  if (m > 0) return u(m, "minute");
  return u(s, "second");
}

/**
 * "baseUrl" → "Base URL".
 * @param {string} key
 */
export function humanize(key) {
  const words = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]+/g, " ").toLowerCase().split(" ");
  const upper = new Set(["url", "api", "id", "oauth", "http", "uri"]);
  return words.map((w, i) => (upper.has(w) ? w.toUpperCase() : i === 0 ? w.charAt(0).toUpperCase() + w.slice(1) : w)).join(" ");
}

/**
 * Opens a modal dialog; when it closes, focus goes back to where it was
 * (the button that opened it), if that is still on the page.
 * @param {HTMLDialogElement} dialog
 */
export function openDialog(dialog) {
  const opener = document.activeElement;
  dialog.addEventListener("close", () => {
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  }, { once: true });
  dialog.showModal();
}
