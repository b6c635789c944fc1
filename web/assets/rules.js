// The product's rules the page needs before the API has a connection to
// answer `permissions` for: who may create a shared connection and which
// availability they may choose (README, "Who may do what"). The API
// checks them again; the page only avoids offering what it would refuse.

/** @typedef {import("../types/api").Claims} Claims */
/** @typedef {import("../types/api").Availability} Availability */
/**
 * @typedef {{ label: string, value: Availability }} Choice
 * @typedef {{ scope: "siteCollection" | "site", label: string, within: string[] }} Custom
 *   a path the caller types: any (within empty) or one inside a listed collection
 */

/** @param {Claims} c */
export function authority(c) {
  return {
    tenantAdmin: Array.isArray(c.roles) && c.roles.includes("tenant_admin"),
    sca: Array.isArray(c.sca) ? c.sca : [],
    owns: Array.isArray(c.owns) ? c.owns : [],
    sites: Array.isArray(c.sites) ? c.sites : [],
  };
}

/** @param {Claims} c */
export function canCreateShared(c) {
  const a = authority(c);
  return a.tenantAdmin || a.sca.length > 0 || a.owns.length > 0;
}

/**
 * The availability choices of a new shared connection, the default first
 * when there is one (tenant admin: the tenant; site collection admin of
 * one collection: it; owner of one site: it). With several, the creator
 * must choose.
 * @param {Claims} c
 * @returns {{ choices: Choice[], custom: Custom[], preset: Availability | null }}
 */
export function availabilityChoices(c) {
  const a = authority(c);
  /** @type {Choice[]} */
  const choices = [];
  /** @type {Custom[]} */
  const custom = [];
  if (a.tenantAdmin) {
    choices.push({ label: "Everyone in the tenant", value: { scope: "tenant" } });
    custom.push({ scope: "siteCollection", label: "A site collection", within: [] });
    custom.push({ scope: "site", label: "A site", within: [] });
    return { choices, custom, preset: choices[0].value };
  }
  for (const sc of a.sca) choices.push({ label: `Site collection ${sc}`, value: { scope: "siteCollection", siteCollection: sc } });
  if (a.sca.length > 0) custom.push({ scope: "site", label: "A site in your site collections", within: a.sca });
  for (const s of a.owns) {
    if (!a.sca.some((sc) => inCollection(s, sc))) choices.push({ label: `Site ${s}`, value: { scope: "site", site: s } });
  }
  let preset = null;
  if (a.sca.length === 1) preset = choices[0].value;
  else if (a.sca.length === 0 && a.owns.length === 1) preset = choices[0].value;
  return { choices, custom, preset };
}

/**
 * Whether site is in the site collection sc (equal, or below it).
 * @param {string} site
 * @param {string} sc
 */
export function inCollection(site, sc) {
  const s = site.toLowerCase(), c = sc.toLowerCase().replace(/\/+$/, "");
  return s === c || s.startsWith(c + "/");
}

/**
 * An availability in words.
 * @param {Availability} av
 */
export function describeAvailability(av) {
  switch (av.scope) {
    case "tenant": return "Everyone in the tenant";
    case "siteCollection": return `Site collection ${av.siteCollection}`;
    case "site": return `Site ${av.site}`;
    case "personal": return "Only its creator";
  }
}

/** Statuses the "needs attention" view gathers. */
export const attentionStatuses = /** @type {const} */ (["expired", "expiring", "error", "pending_authorization"]);

/** @type {Record<string, string>} */
export const statusWords = {
  active: "Active",
  pending_authorization: "Waiting for authorization",
  expiring: "Expiring",
  expired: "Expired",
  error: "Error",
};

/** @type {Record<string, string>} */
const reasonWords = {
  password_expired: "the password has expired",
  password_expiring: "the password expires soon",
  refresh_token_expired: "the provider's authorization has expired",
  refresh_token_expiring: "the provider's authorization expires soon",
  destination_changed: "a setting now names another host: authorize it again",
  token_endpoint_changed: "the OAuth client registration moved: reconnect",
  invalid_grant: "the provider no longer accepts the authorization: reconnect",
  credentials_expired: "its credentials have expired",
  credentials_revoked: "its credentials were revoked",
  connection_deleted: "the connection was deleted",
  connection_disabled: "the connection is disabled",
  connection_not_usable: "the run may not use the connection",
  pending_authorization: "the connection waits for an authorization",
  target_rejected_credentials_401: "the target refused the credentials (401)",
  target_rejected_credentials_403: "the target refused the credentials (403)",
  terminated_by_user: "terminated by a person",
  suspension_timeout: "suspended for 10 days without a fix",
  too_many_suspensions: "suspended too many times",
};

/**
 * A status or run reason code in words (the code itself when unknown).
 * @param {string | undefined} code
 */
export function reasonText(code) {
  if (!code) return "";
  return reasonWords[code] ?? code.replace(/_/g, " ");
}
