// The API client: one place that sends the bearer token, reads ETags and
// turns every error answer into an ApiError that explain() puts in words.

/**
 * @typedef {{ body?: unknown, ifMatch?: string, idempotencyKey?: string, query?: Record<string, string | undefined> }} CallOptions
 * @typedef {{ status: number, data: any, etag: string }} Answer
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {string} [field]
   * @param {any} [details]
   */
  constructor(status, code, message, field, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;
  }
}

/**
 * What a call returns once the sign-in has ended: it never settles. The
 * sign-in view has replaced the page by then, and the view that made the
 * call must not draw its error over it.
 * @returns {Promise<never>}
 */
const signedOut = () => new Promise(() => {});

export class Api {
  /**
   * @param {() => Promise<string | null>} token the caller's bearer token,
   *   renewed first when it is about to expire; null once signed out
   * @param {(renew: boolean) => Promise<boolean>} onUnauthorized called on a
   *   401: true when a renewed token may be tried (renew asks for that),
   *   false when the person must sign in again
   */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {CallOptions} [opts]
   * @param {boolean} [retried] a 401 was answered once already
   * @returns {Promise<Answer>}
   */
  async call(method, path, opts = {}, retried = false) {
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json" };
    const tok = await this.token();
    if (!tok) return signedOut();
    headers.authorization = `Bearer ${tok}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (opts.ifMatch) headers["if-match"] = opts.ifMatch;
    if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
    let url = path;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== "") q.set(k, v);
    if ([...q].length) url += `?${q}`;
    let res;
    try {
      res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), cache: "no-store" });
    } catch {
      throw new ApiError(0, "network", "The service could not be reached. Check your connection and try again.");
    }
    const text = await res.text();
    /** @type {any} */
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (res.status === 401) {
      // The authorizer refused the token (expired, revoked, or the clock
      // moved on): the request never reached the API, so one retry with a
      // renewed token is safe; else the person signs in again.
      if (await this.onUnauthorized(!retried)) return this.call(method, path, opts, true);
      return signedOut();
    }
    if (!res.ok) {
      const e = data?.error;
      throw new ApiError(res.status, e?.code ?? "http_" + res.status,
        e?.message ?? data?.message ?? res.statusText, e?.field, e?.details);
    }
    return { status: res.status, data, etag: res.headers.get("etag") ?? "" };
  }

  /**
   * Every item of a list route, following nextCursor (at most max items).
   * @param {string} path
   * @param {Record<string, string | undefined>} [query]
   * @param {number} [max]
   * @param {(loaded: number) => void} [progress] called after each page but the last
   * @returns {Promise<{ items: any[], truncated: boolean }>}
   */
  async all(path, query = {}, max = 1000, progress) {
    /** @type {any[]} */
    const items = [];
    let cursor;
    do {
      const { data } = await this.call("GET", path, { query: { ...query, limit: "100", cursor } });
      items.push(...data.items);
      cursor = data.nextCursor;
      if (cursor && progress) progress(items.length);
    } while (cursor && items.length < max);
    return { items, truncated: Boolean(cursor) };
  }
}

/** @type {Record<string, string>} */
const codeWords = {
  availability_not_allowed: "That availability is beyond your authority: choose a site or site collection you administer or own.",
  site_not_accessible: "You cannot access that site.",
  credentials_required: "This change would send the stored credentials to another host. Enter new credentials in the same change (Replace credentials).",
  personal_connection: "A personal connection belongs to its creator alone: it cannot be shared or given other owners.",
  connection_in_use: "Workflow runs are using this connection right now.",
  run_not_suspended: "The run is no longer suspended: it may have resumed or finished already.",
  run_finished: "The run has already finished.",
  connection_not_in_run: "No remaining step of the run uses that connection.",
  connection_not_usable: "The run's owner may not use that connection on the run's site.",
  concurrent_change: "Someone else is changing this right now. Try again in a moment.",
  idempotency_key_reused: "This request was already sent with different values. Reload the page and try again.",
  idempotency_conflict: "The same request is still being processed. Wait a moment.",
  oauth_client_missing: "No OAuth client is registered for this type in your tenant: a tenant administrator must register one first.",
  not_authorization_code: "This type does not use an authorization.",
  contention: "The service is busy with other changes to this item. Try again in a moment.",
};

/**
 * A failed call in words for the person using the page; never raw JSON.
 * @param {unknown} err
 * @param {string} [what] what was being done, e.g. "delete the connection"
 * @returns {string}
 */
export function explain(err, what = "do this") {
  if (!(err instanceof ApiError)) return `Something went wrong and the page could not ${what}. Reload the page and try again.`;
  const known = codeWords[err.code];
  switch (err.status) {
    case 0:
      return err.message;
    case 400:
      return `The service did not accept this: ${err.message}`;
    case 401:
      return "Your sign-in has expired. Sign in again.";
    case 403:
      return known ?? `You are not allowed to ${what}. Only the connection's owners and administrators (or, for a personal connection, its creator) may.`;
    case 404:
      return `It no longer exists, or you are not allowed to see it, so the page could not ${what}.`;
    case 409:
      return known ?? `This conflicts with the current state, so the page could not ${what}: ${err.message}`;
    case 412:
      return "Someone changed this after you opened it. The page now shows the latest version: check it and try again.";
    case 413:
      return "That is too large to send.";
    case 422:
      return known ?? `The service could not use this: ${err.message}`;
    case 429:
    case 503:
      return known ?? "The service is busy. Try again in a moment.";
    default:
      return `The service failed and the page could not ${what}. Try again later.`;
  }
}
