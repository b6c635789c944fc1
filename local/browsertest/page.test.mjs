// The Connections page in Chromium: the scenarios of issue 11, run by
// browsertest_test.go against a local runtime it started (BASE_URL) and a
// basic-auth test target (TARGET_URL). Each test opens its own browser
// with a fresh profile, acts as a person would (by role and label, the
// keyboard-only path with keys alone), and saves a screenshot of its final
// state in ARTIFACTS.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const BASE = env("BASE_URL");
const TARGET = env("TARGET_URL");
const USER = env("TARGET_USER");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = env("CHROMIUM");
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WAIT = 20_000; // every wait is bounded

/** @param {string} name */
function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these through go test ./local/browsertest/`);
  return v;
}

const personas = {
  admin: { button: /Tenant administrator/, claims: { sub: "alice@contoso", tid: "contoso", roles: ["tenant_admin"] } },
  sca: { button: /Site collection administrator/, claims: { sub: "bob@contoso", tid: "contoso", sca: ["/sites/hr"] } },
  owner: { button: /Site owner/, claims: { sub: "carol@contoso", tid: "contoso", owns: ["/sites/hr/payroll"], sites: ["/sites/hr/payroll"] } },
  member: { button: /Member/, claims: { sub: "dave@contoso", tid: "contoso", sites: ["/sites/hr/payroll"] } },
};

const open = [];
after(async () => { for (const b of open) await b.close().catch(() => {}); });

/**
 * A browser with a fresh profile, and its page. Uncaught page errors fail
 * the test.
 */
async function browser(t, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "connmgr-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run"],
    viewport: { width: 1280, height: 860 },
    ...options,
  });
  open.push(context);
  context.setDefaultTimeout(WAIT);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  t.after(async () => {
    // The state it ended in, passed or failed, for whoever reads the failure.
    await page.screenshot({ path: path.join(ARTIFACTS, `last-${t.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}.png`) }).catch(() => {});
    await context.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(errors, [], "the page threw");
  });
  return { context, page };
}

/** Saves a screenshot of the page as ARTIFACTS/<name>.png. */
async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function signIn(page, who) {
  await page.goto(BASE + "/");
  await page.getByRole("button", { name: personas[who].button }).click();
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
}

/**
 * Runs axe-core on the page as it is: no serious or critical violation
 * (issue 11), then a screenshot axe-<view>.png.
 */
async function axeScan(page, view) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${view}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(bad, [], `axe-core in the ${view} view`);
  await shot(page, `axe-${view}`);
}

/** Presses Tab (Shift+Tab with back) until the focused element matches; at most 80 times. */
async function tabTo(page, what, matches, arg, back = false) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    if (await page.evaluate(matches, arg)) return;
  }
  throw new Error(`Tab never reached ${what}`);
}

/** The API, as a persona (or claims), for setting up what a scenario needs. */
async function api(who, method, p, body) {
  const claims = typeof who === "string" ? personas[who].claims : who;
  const tok = await (await fetch(BASE + "/dev/token", { method: "POST", body: JSON.stringify(claims) })).json();
  const res = await fetch(BASE + p, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { authorization: `Bearer ${tok.token}`, "content-type": "application/json" },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Every item of a list route, as who sees it: the truth the page is held to. */
async function apiAll(who, p) {
  const items = [];
  let cursor = "";
  do {
    const page = await api(who, "GET", p + (p.includes("?") ? "&" : "?") + "limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    items.push(...page.items);
    cursor = page.nextCursor ?? "";
  } while (cursor);
  return items;
}

/** Waits until check() returns a truthy value, polling; bounded. */
async function until(what, check, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function clockNow() {
  return new Date((await (await fetch(BASE + "/dev/clock")).json()).now);
}

async function advance(d) {
  const res = await fetch(BASE + "/dev/clock", { method: "POST", body: JSON.stringify({ advance: d }) });
  assert.equal(res.status, 200);
}

/** Fills the basic-auth create form (the type already chosen). */
async function fillBasic(page, name, password = "old-secret") {
  await page.getByRole("textbox", { name: /^Name/ }).fill(name);
  await page.getByLabel(/^Base URL/).fill(TARGET + "/api");
  await page.getByLabel(/^Test path/).fill("/ping");
  await page.getByLabel(/^Username/).fill(USER);
  await page.getByLabel(/^Password \(required\)/).fill(password);
}

/** Waits for the page's notice (the flash at the top of a view). */
const notice = (page, text) => page.locator("#notice").getByText(text).waitFor();

/** A section of the detail view, by its heading. */
const section = (page, heading) => page.locator("section").filter({ has: page.getByRole("heading", { level: 2, name: heading }) });

test("each persona creates a shared connection with its default availability; a member a personal one", async (t) => {
  const cases = [
    ["admin", "Everyone in the tenant", "Finance ERP"],
    ["sca", "Site collection /sites/hr", "HR directory"],
    ["owner", "Site /sites/hr/payroll", "Payroll exports"],
  ];
  for (const [who, availability, name] of cases) {
    await t.test(who, async (t) => {
      const { page } = await browser(t);
      await signIn(page, who);
      await page.getByRole("navigation").getByRole("link", { name: "New connection" }).click();
      await page.getByRole("radio", { name: /HTTP with Basic authentication/ }).check();
      assert.ok(await page.getByRole("radio", { name: /^Shared/ }).isChecked(), "shared is the default for " + who);
      const def = page.getByRole("radio", { name: /\(default\)/ });
      assert.ok(await def.isChecked(), "the default availability is chosen");
      assert.match(await def.getAttribute("id").then((id) => page.locator(`label[for="${id}"]`).textContent()), new RegExp(availability.replace(/\//g, "\\/")));
      await fillBasic(page, name);
      if (who === "admin") {
        // The API's field error shows beside its field, and nothing is created.
        await page.getByLabel(/^Base URL/).fill("ftp://files.example.com/");
        await page.getByRole("button", { name: "Create connection" }).click();
        const err = page.locator('[data-for="settings.baseUrl"] .field-error');
        await err.waitFor();
        assert.notEqual((await err.textContent()).trim(), "");
        assert.equal(await page.getByLabel(/^Base URL/).getAttribute("aria-invalid"), "true");
        await shot(page, "create-field-error");
        await page.getByLabel(/^Base URL/).fill(TARGET + "/api");
      }
      await page.getByRole("button", { name: "Create connection" }).click();
      await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
      await notice(page, `Created ${name}.`);
      assert.equal((await page.locator("#availability-now").textContent()).trim(), availability);
      assert.equal(await page.locator(".status-line .badge").textContent(), "Active");
      await page.getByRole("button", { name: "Test connection" }).click();
      await page.locator("#test-result").getByText("The test passed.").waitFor();
      if (who === "sca") {
        // The availability editor: a site in the collection, within their authority.
        await page.getByRole("radio", { name: "A site in your site collections" }).check();
        await page.getByLabel("A site in your site collections: path").fill("/sites/hr/benefits");
        await page.getByRole("button", { name: "Change availability" }).click();
        await notice(page, "Availability changed.");
        assert.equal((await page.locator("#availability-now").textContent()).trim(), "Site /sites/hr/benefits");
      }
      await shot(page, `create-shared-${who}`);
    });
  }
  await t.test("member", async (t) => {
    const { page } = await browser(t);
    await signIn(page, "member");
    await page.getByRole("navigation").getByRole("link", { name: "New connection" }).click();
    assert.ok(await page.getByRole("radio", { name: /^Shared/ }).isDisabled(), "a member cannot create a shared connection");
    assert.ok(await page.getByRole("radio", { name: /^Personal/ }).isChecked());
    await page.getByRole("radio", { name: /HTTP with Basic authentication/ }).check();
    const name = "My timesheets";
    await fillBasic(page, name);
    await page.getByRole("button", { name: "Create connection" }).click();
    await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
    assert.equal((await page.locator("#availability-now").textContent()).trim(), "Only its creator");
    await shot(page, "create-personal-member");
  });
});

test("a member sees a shared connection without any control to change it", async (t) => {
  const name = "Benefits portal";
  const c = await api("admin", "POST", "/connections", { type: "http-basic", name, kind: "shared",
    settings: { baseUrl: TARGET + "/api", testPath: "/ping" }, credentials: { username: USER, password: "old-secret" } });
  const { page } = await browser(t);
  await signIn(page, "member");
  await page.getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  await section(page, "Activity").getByRole("listitem").first().waitFor();
  for (const label of ["Test connection", "Reconnect", "Disable", "Delete…", "Rename", "Save settings", "Replace credentials",
    "Change availability", "Add owner", "Remove"]) {
    assert.equal(await page.getByRole("button", { name: label }).count(), 0, `a member sees "${label}"`);
  }
  assert.equal(await page.locator("main input, main select, main textarea").count(), 0, "a member sees no editor");
  assert.equal(await section(page, "Credentials").getByText("Set", { exact: true }).count(), 2);
  // The API agrees: what the page hides, the member may not do.
  const seen = await api("member", "GET", `/connections/${c.id}`);
  assert.deepEqual(seen.permissions.filter((p) => p !== "use"), []);
  await axeScan(page, "detail-read-only");
  await shot(page, "member-read-only");
});

test("OAuth: create, authorize at the local provider and come back; then reconnect", async (t) => {
  const { context, page } = await browser(t);
  await signIn(page, "admin");
  await page.getByRole("navigation").getByRole("link", { name: "New connection" }).click();
  await page.getByRole("radio", { name: /OAuth 2 \(generic\)/ }).check();
  const name = "Partner API (OAuth)";
  await page.getByRole("textbox", { name: /^Name/ }).fill(name);
  await page.getByLabel(/^Base URL/).fill(TARGET + "/api");
  const popup = context.waitForEvent("page");
  await page.getByRole("button", { name: "Create and authorize" }).click();
  const provider = await popup;
  await provider.waitForLoadState();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  await notice(page, `Created and authorized ${name}.`);
  assert.equal(await page.locator(".status-line .badge").textContent(), "Active");
  await section(page, "Status").getByText("Access token expires").waitFor();

  const again = context.waitForEvent("page");
  await page.getByRole("button", { name: "Reconnect" }).click();
  await again;
  await notice(page, "Reconnected: the provider authorized the connection.");
  assert.equal(await page.locator(".status-line .badge").textContent(), "Active");
  const audit = section(page, "Activity");
  await until("two authorizations in the activity", async () => (await audit.getByText("Authorized").count()) >= 2);
  await shot(page, "oauth-create-reconnect");

  // Someone else renames it meanwhile: the page's write at the version it
  // showed is refused (412), said in words, and the latest version shown.
  const id = await page.locator("#edit-name").evaluate(() => location.hash.split("/").pop());
  await api("admin", "PATCH", `/connections/${id}`, { name: "Partner API" });
  await page.locator("#edit-name").fill("Partner API (production)");
  await page.getByRole("button", { name: "Rename" }).click();
  await notice(page, /Someone changed this after you opened it/);
  await page.getByRole("heading", { level: 1, name: "Partner API", exact: true }).waitFor();
  await shot(page, "stale-write-412");
});

test("a run suspended on an expired password is resumed by replacing the credentials on the page", async (t) => {
  const now = await clockNow();
  const name = "Payroll service";
  const c = await api("admin", "POST", "/connections", { type: "http-basic", name, kind: "shared",
    settings: { baseUrl: TARGET + "/api", testPath: "/ping", passwordExpiresAt: new Date(now.getTime() + 2 * 3600_000).toISOString() },
    credentials: { username: USER, password: "old-secret" } });
  await advance("3h");
  await until("the password to expire", async () => (await api("admin", "GET", `/connections/${c.id}`)).status === "expired");
  const run = await api("admin", "POST", "/runs", { workflowId: "payroll-sync", site: "/sites/hr",
    steps: [{ id: "list", action: "http.request", connection: c.id, input: { method: "GET", path: "/items" } }] });
  await until("the run to be suspended", async () => (await api("admin", "GET", `/runs/${run.id}`)).status === "suspended");

  const { page } = await browser(t);
  await signIn(page, "admin");
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  const card = page.locator(`[data-run="${run.id}"]`);
  await card.getByText(/Terminates in 9 days 2\d hours|Terminates in 10 days/).waitFor();
  await card.getByText("its credentials have expired").waitFor();
  await card.getByRole("link", { name, exact: true }).click();

  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  assert.equal(await page.locator(".status-line .badge").textContent(), "Expired");
  await section(page, "Where it is used").getByText("payroll-sync").first().waitFor();
  // The run waiting on it now, and the way to it.
  await section(page, "Where it is used").getByRole("row").filter({ hasText: "Run now" }).filter({ hasText: "payroll-sync" }).waitFor();
  await section(page, "Where it is used").getByRole("link", { name: "See the suspended runs" }).waitFor();
  // A new password with its new expiry: the settings change goes with it.
  const later = new Date((await clockNow()).getTime() + 90 * 86400_000);
  const local = new Date(later.getTime() - later.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await page.getByLabel(/^Password expires/).fill(local);
  await page.getByRole("button", { name: "Replace credentials" }).click();
  const form = page.locator("#credentials-form");
  await form.getByLabel(/^Username/).fill(USER);
  await form.getByLabel(/^Password/).fill("new-secret");
  await form.getByRole("button", { name: "Save credentials" }).click();
  await notice(page, "Credentials and settings saved.");
  assert.equal(await page.locator(".status-line .badge").textContent(), "Active");

  await until("the run to succeed", async () => (await api("admin", "GET", `/runs/${run.id}`)).status === "succeeded", 30_000);
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  await page.locator(`tr[data-run="${run.id}"]`).getByText("Succeeded").waitFor();
  assert.equal(await page.locator(`li[data-run="${run.id}"]`).count(), 0, "no longer suspended");
  await page.getByRole("link", { name: "Connections" }).first().click();
  await page.getByRole("link", { name, exact: true }).click();
  await section(page, "Activity").getByText("Replaced the credentials").waitFor();
  // Afterwards: the workflow that used it, with its last run, succeeded.
  await section(page, "Where it is used").getByRole("row").filter({ hasText: "Workflow" }).filter({ hasText: "payroll-sync" })
    .filter({ hasText: "succeeded" }).waitFor();
  await shot(page, "resume-by-new-credentials");
  fs.copyFileSync(path.join(ARTIFACTS, "resume-by-new-credentials.png"), path.join(ARTIFACTS, "connection-detail.png"));
});

test("more than a page of connections: filters by the API, every page loaded, counts and search past the first page", async (t) => {
  // 104 personal connections of someone else's, made last, so most are
  // past the API's first page (100): the last 3 wait for an OAuth
  // authorization, and one has a name to search for.
  const pat = { sub: "pat@contoso", tid: "contoso", sites: ["/sites/hr/payroll"] };
  const bodies = [];
  for (let i = 1; i <= 100; i++) {
    bodies.push({ type: "http-basic", name: `Bulk ${String(i).padStart(3, "0")}`, kind: "personal",
      settings: { baseUrl: TARGET + "/api" }, credentials: { username: USER, password: "old-secret" } });
  }
  bodies.push({ type: "http-basic", name: "Needle in the haystack", kind: "personal",
    settings: { baseUrl: TARGET + "/api" }, credentials: { username: USER, password: "old-secret" } });
  for (let i = 1; i <= 3; i++) bodies.push({ type: "oauth2-generic", name: `Bulk OAuth ${i}`, kind: "personal", settings: {} });
  for (let i = 0; i < bodies.length; i += 8) {
    await Promise.all(bodies.slice(i, i + 8).map((b) => api(pat, "POST", "/connections", b)));
  }
  // What the tenant administrator sees, read from the API page by page.
  const everything = await apiAll("admin", "/connections");
  assert.ok(everything.length > 100, `more than a page (${everything.length})`);
  const personal = everything.filter((c) => c.kind === "personal");
  const personalOAuth = personal.filter((c) => c.type === "oauth2-generic");
  const waiting = everything.filter((c) => c.status === "pending_authorization");
  assert.ok(everything.findIndex((c) => c.name === "Needle in the haystack") >= 100, "the needle is past the first page");

  const { page } = await browser(t);
  const asked = [];
  page.on("request", (r) => { if (new URL(r.url()).pathname === "/connections") asked.push(new URL(r.url()).searchParams); });
  await signIn(page, "admin");
  await page.locator(`[data-attention="pending_authorization"]`).getByText(`${waiting.length} waiting for authorization`).waitFor();
  assert.ok(asked.some((q) => q.get("status") === "pending_authorization"), "counted by the API's status filter");

  await page.getByRole("button", { name: /^Personal/ }).click();
  const count = page.locator("#list-count");
  await count.getByText(`${personal.length} connections`, { exact: true }).waitFor();
  assert.ok(asked.some((q) => q.get("scope") === "personal" && q.get("cursor")), "the personal ones by the API's scope filter, past the first page");
  await page.getByRole("searchbox", { name: "Search by name" }).fill("needle");
  await count.getByText("1 connection", { exact: true }).waitFor();
  await page.getByRole("link", { name: "Needle in the haystack" }).waitFor();
  // A row: name, type, availability, owners, status, last used.
  const cells = await page.locator("table.connections tbody tr").first().locator("th, td").allTextContents();
  assert.deepEqual(cells.map((x) => x.trim()), ["Needle in the haystack", "HTTP with Basic authentication", "Only its creator", "pat@contoso", "Active", "Never"]);
  await page.getByRole("searchbox", { name: "Search by name" }).fill("");
  await page.getByLabel("Type").selectOption({ label: "OAuth 2 (generic)" });
  await count.getByText(`${personalOAuth.length} connection${personalOAuth.length === 1 ? "" : "s"}`, { exact: true }).waitFor();
  assert.ok(asked.some((q) => q.get("scope") === "personal" && q.get("type") === "oauth2-generic"), "the type by the API's filter");
  await page.getByLabel("Type").selectOption({ label: "All" });

  await page.locator(`[data-attention="pending_authorization"]`).click();
  assert.equal(await page.getByRole("button", { name: /^Needs attention/ }).getAttribute("aria-pressed"), "true");
  await count.getByText(`${waiting.length} connection${waiting.length === 1 ? "" : "s"}`, { exact: true }).waitFor();
  for (const i of [1, 2, 3]) await page.getByRole("link", { name: `Bulk OAuth ${i}`, exact: true }).waitFor();
  assert.equal(await page.getByLabel("Status").inputValue(), "pending_authorization");
  await axeScan(page, "needs-attention-filtered");
  await shot(page, "list-past-first-page");
  await page.getByLabel("Status").selectOption({ label: "All" });
  await page.getByRole("button", { name: /^Shared/ }).click();
});

test("keyboard only: sign in and create a shared connection", async (t) => {
  const { page } = await browser(t);
  await page.goto(BASE + "/");
  await page.getByRole("button", { name: personas.owner.button }).waitFor();
  const focusVisible = () => page.evaluate(() => {
    const el = document.activeElement;
    return !!el && el.matches(":focus-visible") && getComputedStyle(el).outlineStyle !== "none";
  });
  await tabTo(page, "the site owner persona", () => document.activeElement?.getAttribute("data-persona") === "site-owner");
  assert.ok(await focusVisible(), "focus is visible");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
  await tabTo(page, "New connection", () => document.activeElement?.textContent === "New connection");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "New connection" }).waitFor();
  await tabTo(page, "the type choice", () => document.activeElement?.getAttribute("name") === "type");
  await page.keyboard.press("Space"); // the first type: HTTP with Basic authentication
  assert.ok(await page.getByRole("radio", { name: /HTTP with Basic authentication/ }).isChecked());
  const name = "Expenses API";
  await tabTo(page, "Name", () => document.activeElement?.id === "new-name");
  await page.keyboard.type(name);
  for (const [field, value] of [["settings.baseUrl", TARGET + "/api"], ["credentials.username", USER], ["credentials.password", "old-secret"]]) {
    await tabTo(page, field, (f) => document.activeElement?.getAttribute("data-field") === f, field);
    await page.keyboard.type(value);
  }
  await tabTo(page, "Create connection", () => document.activeElement?.textContent === "Create connection");
  assert.ok(await focusVisible(), "focus is visible on the submit button");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  assert.equal((await page.locator("#availability-now").textContent()).trim(), "Site /sites/hr/payroll");
  await shot(page, "keyboard-create");
});

test("403 and 404 are said in words; the activity timeline pages on", async (t) => {
  const name = "Timesheets API";
  const c = await api("admin", "POST", "/connections", { type: "http-basic", name: "Timesheets v0", kind: "shared",
    availability: { scope: "site", site: "/sites/hr/payroll" }, settings: { baseUrl: TARGET + "/api" },
    credentials: { username: USER, password: "old-secret" } });
  // More activity than one page of the timeline (50).
  for (let i = 1; i <= 55; i++) await api("admin", "PATCH", `/connections/${c.id}`, { name: i === 55 ? name : `Timesheets v${i}` });
  await api("admin", "PUT", `/connections/${c.id}/owners`, { owners: ["alice@contoso", "carol@contoso"] });
  const audit = await apiAll("owner", `/connections/${c.id}/audit`);
  assert.ok(audit.length > 50, `more than a page of activity (${audit.length})`);

  const { page } = await browser(t);
  await signIn(page, "owner");
  await page.getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  const entries = page.locator("#activity > li");
  const older = page.getByRole("button", { name: "Show older activity" });
  await older.waitFor();
  assert.equal(await entries.count(), 50);
  await older.press("Enter");
  await until("every entry", async () => (await entries.count()) === audit.length);
  assert.equal(await older.count(), 0, "nothing older");
  assert.ok(await page.evaluate(() => document.activeElement?.matches("#activity > li:nth-child(51)")), "focus on the first older entry");
  await entries.last().getByText("by alice@contoso").waitFor();

  // The owners editor: an owner adds another, then removes them.
  await page.getByLabel("Add an owner (user id)").fill("erin@contoso");
  await page.getByRole("button", { name: "Add owner" }).click();
  await notice(page, "Added erin@contoso as an owner.");
  assert.deepEqual((await api("admin", "GET", `/connections/${c.id}`)).owners, ["alice@contoso", "carol@contoso", "erin@contoso"]);
  await page.getByRole("button", { name: "Remove owner erin@contoso" }).click();
  await notice(page, "Removed erin@contoso.");
  assert.deepEqual((await api("admin", "GET", `/connections/${c.id}`)).owners, ["alice@contoso", "carol@contoso"]);
  assert.equal(await page.locator("#availability-form").count(), 0, "a site owner may not change the availability");

  // Carol is no longer an owner when she renames it: 403, in words.
  await api("admin", "PUT", `/connections/${c.id}/owners`, { owners: ["alice@contoso"] });
  await page.locator("#edit-name").fill("Timesheets (payroll)");
  await page.getByRole("button", { name: "Rename" }).click();
  const problem = section(page, "Name").locator(".form-error");
  await problem.getByText(/^You are not allowed to rename the connection\. Only the connection's owners and administrators/).waitFor();
  await axeScan(page, "detail-403");
  // Then it is deleted: 404, in words.
  await api("admin", "DELETE", `/connections/${c.id}`);
  await page.getByRole("button", { name: "Rename" }).click();
  await problem.getByText(/^It no longer exists, or you are not allowed to see it, so the page could not rename the connection\./).waitFor();
  await page.evaluate(() => { location.hash = "#/connections/no-such-connection"; });
  await page.getByRole("heading", { level: 1, name: "Connection", exact: true }).waitFor();
  await page.getByRole("alert").getByText("It no longer exists, or you are not allowed to see it, so the page could not show this connection.").waitFor();
  assert.doesNotMatch(await page.locator("main").textContent(), /[{}]|"code"|not_found|forbidden/, "no raw JSON or code");
  await axeScan(page, "detail-404");
});

test("keyboard only: the needs-attention view, and a suspended run resumed, then terminated, from the Runs view", async (t) => {
  const c = await api("admin", "POST", "/connections", { type: "http-basic", name: "Badge printer", kind: "shared",
    settings: { baseUrl: TARGET + "/api" }, credentials: { username: USER, password: "wrong" } });
  const run = await api("admin", "POST", "/runs", { workflowId: "badge-print", site: "/sites/hr",
    steps: [{ id: "print", action: "http.request", connection: c.id, input: { method: "POST", path: "/badges", body: { n: 1 } } }] });
  await until("the run to be suspended", async () => (await api("admin", "GET", `/runs/${run.id}`)).status === "suspended");
  await api("admin", "POST", "/connections", { type: "oauth2-generic", name: "Badge portal", kind: "shared", settings: {} });
  const { page } = await browser(t);
  const focused = (sel) => page.evaluate((s) => !!document.activeElement?.matches(s), sel);
  await page.goto(BASE + "/");
  await page.getByRole("button", { name: personas.admin.button }).waitFor();
  await tabTo(page, "the tenant administrator persona", () => document.activeElement?.getAttribute("data-persona") === "tenant-admin");
  await page.keyboard.press("Enter");
  await page.locator('#list-body[aria-busy="false"]').waitFor();
  await tabTo(page, "the Needs attention tab", () => document.activeElement?.getAttribute("data-tab") === "attention");
  await page.keyboard.press("Enter");
  await page.locator('[data-tab="attention"][aria-pressed="true"]').waitFor();
  await page.locator('#list-body[aria-busy="false"]').getByRole("link", { name: "Badge portal" }).waitFor();
  await tabTo(page, "Runs", () => document.activeElement?.textContent === "Runs");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Runs" }).waitFor();
  const card = `li[data-run="${run.id}"]`;
  await tabTo(page, "Resume", (sel) => !!document.activeElement?.matches(sel), `${card} [data-action="resume"]`);
  const before = (await api("admin", "GET", `/runs/${run.id}`)).suspension?.suspendedAt;
  await page.keyboard.press("Enter");
  await notice(page, "Resumed: the waiting step runs again.");
  // The password is still wrong: the run waits again.
  await until("the run to be suspended again", async () => {
    const r = await api("admin", "GET", `/runs/${run.id}`);
    return r.status === "suspended" && r.suspension?.suspendedAt !== before;
  });
  await tabTo(page, "Refresh", () => document.activeElement?.id === "refresh-runs", undefined, true);
  await page.keyboard.press("Enter");
  await page.locator(card).waitFor();
  await tabTo(page, "Terminate…", (sel) => !!document.activeElement?.matches(sel), `${card} [data-action="terminate"]`);
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  assert.ok(await focused("dialog button:not(.danger)"), "the dialog opens on Cancel");
  await axeScan(page, "terminate-dialog");
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  assert.equal((await api("admin", "GET", `/runs/${run.id}`)).status, "suspended", "Escape terminates nothing");
  await page.keyboard.press("Enter"); // focus is back on Terminate…
  await page.getByRole("dialog").waitFor();
  await page.keyboard.press("Shift+Tab");
  assert.ok(await focused("#confirm-terminate"));
  await page.keyboard.press("Enter");
  await notice(page, "Terminated.");
  assert.equal((await api("admin", "GET", `/runs/${run.id}`)).status, "terminated");
  await shot(page, "keyboard-runs");
});

test("axe-core finds no serious or critical violation in any view", async (t) => {
  // Something for every view to show: a run suspended on a refused password.
  const name = "Legacy HR API";
  const c = await api("admin", "POST", "/connections", { type: "http-basic", name, kind: "shared",
    settings: { baseUrl: TARGET + "/api", testPath: "/ping" }, credentials: { username: USER, password: "wrong" } });
  const run = await api("admin", "POST", "/runs", { workflowId: "hr-onboarding", site: "/sites/hr",
    steps: [{ id: "add", action: "http.request", connection: c.id, input: { method: "POST", path: "/people", body: { n: 1 } } }] });
  await until("the run to be suspended", async () => (await api("admin", "GET", `/runs/${run.id}`)).status === "suspended");
  await api("admin", "POST", "/connections", { type: "oauth2-generic", name: "CRM (waiting for sign-in)", kind: "shared", settings: {} });

  const { page } = await browser(t);
  const scan = (view) => axeScan(page, view);
  await page.goto(BASE + "/");
  await page.getByRole("button", { name: personas.admin.button }).waitFor();
  await scan("sign-in");
  await page.getByRole("button", { name: personas.admin.button }).click();
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
  await page.getByRole("table").waitFor();
  await scan("connections");
  fs.copyFileSync(path.join(ARTIFACTS, "axe-connections.png"), path.join(ARTIFACTS, "connections-page.png"));
  await page.getByRole("button", { name: /Needs attention/ }).click();
  await scan("needs-attention");
  await page.getByRole("navigation").getByRole("link", { name: "New connection" }).click();
  await page.getByRole("radio", { name: /HTTP with an API key/ }).check();
  await scan("create");
  await page.getByRole("button", { name: "Create connection" }).click(); // empty: field errors
  await page.locator(".field-error:not([hidden])").first().waitFor();
  await scan("create-errors");
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  await page.locator(`li[data-run="${run.id}"]`).waitFor();
  await scan("runs");
  await page.locator(`li[data-run="${run.id}"]`).getByRole("button", { name: /Rebind/ }).click();
  await page.getByRole("dialog").waitFor();
  await scan("rebind-dialog");
  await page.keyboard.press("Escape");
  await page.locator(`li[data-run="${run.id}"]`).getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
  await section(page, "Activity").getByRole("listitem").first().waitFor();
  await page.getByRole("button", { name: "Replace credentials" }).click();
  await scan("detail");
  await page.getByRole("button", { name: "Delete…" }).click();
  await page.getByRole("dialog").getByText(/run\(s\) use it now/).waitFor();
  await scan("delete-dialog");
  // Deleting what runs wait on needs the second confirmation (409
  // connection_in_use), then the run waits for a rebind.
  await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete anyway" }).waitFor();
  await page.getByRole("dialog").getByText(/hr-onboarding/).waitFor();
  await page.getByRole("dialog").getByRole("button", { name: "Delete anyway" }).click();
  await notice(page, `Deleted ${name}.`);
  await until("the run to wait as connection_deleted", async () => (await api("admin", "GET", `/runs/${run.id}`)).suspension?.reason === "connection_deleted");
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  await page.locator(`li[data-run="${run.id}"]`).getByText("the connection was deleted").waitFor();
  await scan("runs-after-delete");
  // The rescue: point the run at another connection usable on its site.
  await page.locator(`li[data-run="${run.id}"]`).getByRole("button", { name: /Rebind/ }).click();
  await page.getByRole("dialog").getByLabel("Connection").selectOption({ label: "Finance ERP (shared)" });
  await page.getByRole("dialog").getByRole("button", { name: "Rebind and resume" }).click();
  await notice(page, "Rebound: the run resumed with the other connection.");
  await until("the rebound run to succeed", async () => (await api("admin", "GET", `/runs/${run.id}`)).status === "succeeded", 30_000);
  await page.locator("#refresh-runs").click();
  await page.locator(`tr[data-run="${run.id}"]`).getByText("Succeeded").waitFor();
  await shot(page, "rebind-rescue");
  await signOutAndIn(page, "member");
  await page.getByRole("navigation").getByRole("link", { name: "New connection" }).click();
  await scan("create-member");
});

async function signOutAndIn(page, who) {
  await page.getByRole("button", { name: "Switch persona" }).click();
  await page.getByRole("button", { name: personas[who].button }).click();
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
}

/** The stand-in provider's next answers (oidc_test.go); clears its report. */
async function oidcMode(mode) {
  const res = await fetch(env("OIDC_PAGE_URL") + "/stand-in/mode", { method: "POST", body: JSON.stringify(mode) });
  assert.equal(res.status, 200);
}

async function oidcReport() {
  return (await fetch(env("OIDC_PAGE_URL") + "/stand-in/report")).json();
}

/** The "n" claim of a stand-in access token: which one it was. */
const tokenNumber = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).n;

/** Signs in on the OIDC page at hash and waits for view (an h1). */
async function oidcSignIn(page, hash, view) {
  await page.goto(env("OIDC_PAGE_URL") + "/" + hash);
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: view }).waitFor();
  await page.getByText("Signed in as").waitFor();
}

test("on AWS: OpenID Connect sign-in (code flow with PKCE), a token endpoint on its own origin, the token in memory only", async (t) => {
  // A stand-in provider on https://127.0.0.1 (its certificate is the test's
  // own) whose token endpoint is on another origin, as Amazon Cognito's is,
  // and a stub API that records the bearer tokens; see oidc_test.go.
  await oidcMode({ ttl: 0, refresh: true });
  const PAGE = env("OIDC_PAGE_URL");
  const { page } = await browser(t, { ignoreHTTPSErrors: true });
  const answer = await page.goto(PAGE + "/#/new");
  // The CSP lets the page reach its own origin, the issuer's and the
  // configured token endpoint's: nothing else.
  const csp = answer.headers()["content-security-policy"];
  assert.match(csp, new RegExp(`; connect-src 'self' ${env("OIDC_ISSUER_URL")} ${env("OIDC_TOKEN_URL")}; `));
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  assert.equal(await page.getByRole("button", { name: personas.admin.button }).count(), 0, "no persona picker on AWS");
  assert.ok(await page.locator("#dev").isHidden(), "no dev panel on AWS");
  await axeScan(page, "sign-in-aws");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "New connection" }).waitFor(); // back where it started
  await page.getByText("Signed in as").waitFor();
  assert.equal(new URL(page.url()).search, "", "the code and state are gone from the address bar");
  const kept = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]));
  assert.equal(kept, JSON.stringify([{}, {}, ""]), "nothing is kept in storage or cookies");
  const report = await oidcReport();
  assert.deepEqual(report.problems, [], "the provider refused a step");
  assert.deepEqual(report.grants, ["authorization_code"], "the code was exchanged at the token endpoint's own origin");
  assert.ok(report.bearers.length > 0, "the page called the API");
  for (const b of report.bearers) {
    assert.equal(JSON.parse(Buffer.from(b.split(".")[1], "base64url").toString()).aud, env("OIDC_AUDIENCE"), "the API's audience");
  }
  await shot(page, "oidc-sign-in");
  // A reload keeps nothing: sign in again.
  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
});

test("on AWS: a token endpoint on an origin the page was not set up for is explained, not blocked in silence", async (t) => {
  await oidcMode({ ttl: 0, refresh: true });
  const { page } = await browser(t, { ignoreHTTPSErrors: true });
  const answer = await page.goto(env("OIDC_PAGE_UNSET_URL") + "/");
  assert.match(answer.headers()["content-security-policy"], new RegExp(`; connect-src 'self' ${env("OIDC_ISSUER_URL")}; `));
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.getByText(`token endpoint is on ${env("OIDC_TOKEN_URL")}`).waitFor();
  assert.match(await alert.textContent(), /PageTokenEndpoint/);
  assert.equal((await oidcReport()).grants.length, 0, "nothing was sent to the token endpoint");
  await shot(page, "oidc-token-endpoint-unset");
});

test("on AWS: a sign-in about to expire is renewed in the background with the refresh token", async (t) => {
  // Tokens live 63 s: the page renews a minute ahead, so within seconds.
  await oidcMode({ ttl: 63, refresh: true });
  const { page } = await browser(t, { ignoreHTTPSErrors: true });
  await oidcSignIn(page, "#/", "Connections");
  await until("a renewal", async () => (await oidcReport()).grants.includes("refresh_token"), 15_000);
  // The rotated refresh token renews again, and the page goes on working.
  await until("a second renewal", async () => (await oidcReport()).grants.filter((g) => g === "refresh_token").length >= 2, 15_000);
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  await page.getByRole("heading", { level: 1, name: "Runs" }).waitFor();
  await page.getByRole("navigation").getByRole("link", { name: "Connections" }).click();
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
  await page.getByText("There are no shared connections you can see yet.").waitFor();
  const report = await oidcReport();
  assert.deepEqual(report.problems, []);
  const last = report.bearers[report.bearers.length - 1];
  assert.ok(tokenNumber(last) >= 3, `the API got a renewed token (number ${tokenNumber(last)})`);
  assert.equal(await page.getByRole("heading", { level: 1, name: "Sign in" }).count(), 0, "never asked to sign in");
  const kept = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]));
  assert.equal(kept, JSON.stringify([{}, {}, ""]), "the refresh token is not kept in storage or cookies");
  await shot(page, "oidc-renewed");
});

test("on AWS: without a way to renew, an expiring sign-in asks to sign in again and comes back to the view", async (t) => {
  await oidcMode({ ttl: 63, refresh: false });
  const { page } = await browser(t, { ignoreHTTPSErrors: true });
  await oidcSignIn(page, "#/new", "New connection");
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor({ timeout: 15_000 });
  await page.getByRole("alert").getByText("Your sign-in has ended. Sign in again to continue where you were.").waitFor();
  assert.equal(await page.getByText(/Unauthorized|401|\{/).count(), 0, "no raw error");
  await axeScan(page, "sign-in-ended");
  await oidcMode({ ttl: 0, refresh: false });
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "New connection" }).waitFor();
  // A token the API refuses although it has not expired (revoked): the
  // same request to sign in again, never the raw 401.
  await oidcMode({ ttl: 0, refresh: true, revoked: true });
  await page.goto(env("OIDC_PAGE_URL") + "/#/runs");
  // Only the hash changed: the page keeps its token (no refresh token:
  // refresh was off) and may already show the ended sign-in for it. The
  // sign-in below is a round trip to the provider; wait for its grants,
  // not for an alert that may still be the one from before the click.
  await page.getByRole("button", { name: "Sign in" }).click();
  await until("the code exchange and one renewal", async () => (await oidcReport()).grants.length >= 2, 15_000);
  await page.getByRole("alert").getByText("Your sign-in has ended").waitFor();
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  assert.equal(await page.getByText(/Unauthorized|\{/).count(), 0, "no raw error");
  const report = await oidcReport();
  assert.deepEqual(report.grants, ["authorization_code", "refresh_token"], "one renewal was tried after the 401, then no more");
  assert.ok(report.bearers.length <= 4, `the page gave up after a retry (${report.bearers.length} calls)`);
});

test("make dev: an expiring token and a clock moved 10 days on are renewed in the background", async (t) => {
  // Last: it moves the runtime's clock 10 days for good.
  const { page } = await browser(t);
  await page.goto(BASE + "/");
  const now = await clockNow();
  await page.getByText("Custom claims").click();
  await page.getByLabel(/^Claims/).fill(JSON.stringify({ ...personas.admin.claims, exp: Math.floor(now.getTime() / 1000) + 30 }));
  await page.getByRole("button", { name: "Sign in with these claims" }).click();
  await page.getByRole("heading", { level: 1, name: "Connections" }).waitFor();
  await page.locator('#list-body[aria-busy="false"]').waitFor();
  await page.locator("#dev").getByRole("button", { name: "+10 days" }).click();
  await until("the clock to move", async () => (await clockNow()).getTime() - now.getTime() > 10 * 86400_000);
  await page.getByRole("navigation").getByRole("link", { name: "Runs" }).click();
  await page.getByRole("heading", { level: 1, name: "Runs" }).waitFor();
  await page.getByRole("heading", { level: 2, name: /^Suspended/ }).waitFor();
  // The dev panel's event log shows what the functions put on the bus.
  await page.locator("#dev-events li strong").first().waitFor();
  await page.getByRole("navigation").getByRole("link", { name: "Connections" }).click();
  await page.locator('#list-body[aria-busy="false"]').waitFor();
  await page.getByRole("button", { name: /^Needs attention/ }).locator(".count").waitFor();
  assert.equal(await page.locator(".notice.error").count(), 0, "no error shown");
  assert.equal(await page.getByRole("heading", { level: 1, name: "Sign in" }).count(), 0, "never asked to sign in");
  await shot(page, "dev-renewed");
});
