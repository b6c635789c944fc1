// The API's shapes as the page reads them (docs/openapi.yaml is the
// reference). Type declarations only: tsc checks the page's modules
// against them; nothing here is served.

export type Scope = "tenant" | "siteCollection" | "site" | "personal";
export type ConnectionStatus = "active" | "pending_authorization" | "expiring" | "expired" | "error";
export type Permission = "edit" | "configure" | "delete" | "changeAvailability" | "changeOwners" | "test" | "authorize" | "use";
export type AuthMethod = "basic" | "apiKey" | "oauth2AuthorizationCode" | "oauth2ClientCredentials";

export interface Availability {
  scope: Scope;
  siteCollection?: string;
  site?: string;
}

export interface JSONSchema {
  type?: string | string[];
  format?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  items?: JSONSchema;
  properties?: Record<string, JSONSchema>;
  required?: string[];
  writeOnly?: boolean;
}

export interface ConnectionType {
  id: string;
  name: string;
  description: string;
  authMethod: AuthMethod;
  settingsSchema: JSONSchema;
  credentialsSchema: JSONSchema;
}

export interface Connection {
  id: string;
  type: string;
  name: string;
  kind: "shared" | "personal";
  availability: Availability;
  owners: string[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  version: number;
  status: ConnectionStatus;
  statusReason?: string;
  disabled: boolean;
  settings: Record<string, unknown>;
  credentials: Record<string, boolean>;
  tokenExpiresAt?: string;
  refreshTokenExpiresAt?: string;
  lastUsedAt?: string;
  permissions: Permission[];
  authorizeUrl?: string;
  authorizeExpiresAt?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  version: number;
  changes?: string[];
  details?: Record<string, string>;
}

export interface TestResult {
  ok: boolean;
  code: string;
  message: string;
  authFailure?: boolean;
  providerCode?: string;
  status?: number;
  target?: string;
}

export interface Suspension {
  connection: string;
  reason: string;
  suspendedAt: string;
  terminatesAt: string;
}

export interface StepView {
  id: string;
  action: string;
  connection: string;
  result?: { outcome: string; status?: number; reason?: string; attempts: number; at: string };
}

export interface Run {
  id: string;
  workflowId: string;
  site: string;
  owner: string;
  status: "running" | "suspended" | "succeeded" | "failed" | "terminated";
  reason?: string;
  steps: StepView[];
  suspension?: Suspension;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
}

export interface UsageItem {
  kind: "workflow" | "run";
  workflowId: string;
  runId: string;
  site: string;
  owner: string;
  status: Run["status"];
  reason?: string;
  at: string;
}

export interface UsagePage extends Page<UsageItem> {
  hidden: number;
}

export interface InUseDetails {
  runs?: { id?: string; runId?: string; workflowId?: string; site?: string; owner?: string; status?: string }[];
  hidden?: number;
}

export interface Claims {
  sub?: string;
  tid?: string;
  roles?: string[];
  sca?: string[];
  owns?: string[];
  sites?: string[];
  exp?: number;
  aud?: string | string[];
  nonce?: string;
  name?: string;
  [claim: string]: unknown;
}

export interface BusRecord {
  event: { id?: string; "detail-type": string; time?: string; detail?: Record<string, unknown> };
}
