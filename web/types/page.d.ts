// What the page's views share (main.js builds it). Type declarations only.
import type { Api } from "../assets/api.js";
import type { ConnectionType, Claims } from "./api";

export interface Session {
  token: string;
  claims: Claims;
  label: string;
  /** A new session for the same person (a refresh token, a new local token), when there is a way. */
  renew?: () => Promise<Session>;
}

export interface Ctx {
  api: Api;
  session: Session;
  /** The catalogue, by type id. */
  types: Map<string, ConnectionType>;
  /** The page runs on `make dev` (the local runtime's routes answer). */
  dev: boolean;
  /** Now, in milliseconds, on the API's clock (the runtime's in `make dev`). */
  now(): number;
  /** Shows hash's view ("#/connections/<id>"), again if it is the current
   * one, with flash at its top. */
  go(hash: string, flash?: string, kind?: "ok" | "error"): void;
  /** Says msg at the top of the view; kind "error" is announced at once. */
  notify(msg: string, kind?: "ok" | "error"): void;
  /** Runs fn when the view is left (timers). */
  onLeave(fn: () => void): void;
  /** The dev panel's event log and clock read again. */
  refreshDev(): void;
}

/** What h() and replace() accept as children: nested arrays are flattened. */
export type Child = string | number | Node | null | undefined | false;
export type Children = Child | Children[];
