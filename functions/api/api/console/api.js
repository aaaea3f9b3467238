// The JSON API, called with the operator's key. The key lives in this tab's sessionStorage only: it is gone when
// the tab closes, never sent anywhere but this origin's /api/v1, and the console has no privileges of its own.

const KEY = "notify.console.apiKey";
const listeners = new Set();
let pending = 0;

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** Called with the number of requests in flight whenever it changes (the progress bar listens). */
export function onActivity(listener) {
  listeners.add(listener);
}

function activity(delta) {
  pending += delta;
  for (const listener of listeners) listener(pending);
}

/** An answer that is not 2xx, in the API's one error shape: status, code, message and field errors. */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = (body && body.error) || {};
    super(error.message || fallback || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : `http_${status}`);
    this.fields = Array.isArray(error.fields) ? error.fields : [];
  }

  /** What a person should read: the API's message, said plainly for the key's two refusals. */
  get explanation() {
    if (this.status === 401) return `The API key was refused: ${this.message}. Enter a valid key in the “API key” field.`;
    if (this.status === 403) return `This API key may not do this: ${this.message}.`;
    if (this.status === 0) return `The API could not be reached: ${this.message}.`;
    return this.message;
  }
}

/** Percent-encode one path segment, of an API path or of a console address (ids may hold any character). */
export const seg = (value) => encodeURIComponent(String(value));

/** The channels a notification, a template or a campaign names. */
export const CHANNELS = ["email", "push", "websocket"];

/**
 * One request to /api/v1/<path>. `query` drops empty values; `body` is sent as JSON. Resolves to the parsed
 * answer (null for 204), rejects with an ApiError. A 401 also fires the window's "api-key-refused" event.
 */
export async function api(method, path, { query, body, signal } = {}) {
  const url = new URL(`../api/v1/${path}`, document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  activity(1);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, null, error.message);
  } finally {
    activity(-1);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, text.slice(0, 200) || response.statusText);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("api-key-refused", { detail: error }));
    throw error;
  }
  return data;
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, body, options) => api("POST", path, { ...options, body: body ?? {} });
export const put = (path, body, options) => api("PUT", path, { ...options, body });
export const patch = (path, body, options) => api("PATCH", path, { ...options, body });
export const del = (path, options) => api("DELETE", path, options);

/**
 * A signal for a request that replaces the one before it (a preview as it is typed): each call aborts the signal
 * the call before gave, and the page's `signal` aborts them all.
 */
export function replacing(signal) {
  let inflight = null;
  return () => {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const mine = inflight;
    signal.addEventListener("abort", () => mine.abort());
    return mine.signal;
  };
}

// POST /dlq/redrive reads at most `limit` letters per call (1,000 at most, 100 by default), with or without
// job_ids: a redrive of chosen letters sends the most, or a large queue would hide them behind its first 100.
export const REDRIVE_LIMIT = 1000;
const REDRIVE_CALLS = 4;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Redrive the dead letters of `jobIds`, or (null) up to REDRIVE_LIMIT letters of the queue. A letter someone listed
 * in the last 2 s is hidden from this receive, so the chosen ones that came back neither redriven nor skipped are
 * asked for again, REDRIVE_CALLS calls in all, 1.5 s apart. `onAnswer(redriven, skipped)` follows each call,
 * `onWait(missing, attempt)` comes before each wait. Resolves to {redriven, skipped, missing}: the job ids
 * redriven, the letters skipped ({job_id or message_id, reason}), and the chosen ids no call found (null for the
 * whole queue).
 */
export async function redrive(jobIds, { onAnswer = () => {}, onWait = () => {} } = {}) {
  const redriven = [];
  const skipped = [];
  let missing = jobIds ? [...jobIds] : null;
  for (let attempt = 0; attempt < REDRIVE_CALLS; attempt++) {
    const result = await post("dlq/redrive", { ...(missing ? { job_ids: missing } : {}), limit: REDRIVE_LIMIT });
    redriven.push(...result.redriven);
    skipped.push(...result.skipped);
    onAnswer(redriven, skipped);
    if (!missing) break;
    const answered = new Set([...result.redriven, ...result.skipped.map((s) => s.job_id)]);
    missing = missing.filter((id) => !answered.has(id));
    if (!missing.length) break;
    onWait(missing, attempt);
    await sleep(1500);
  }
  return { redriven, skipped, missing };
}

let eventTypes = null;

/** The service's event types (cached for the tab): defaults, payload fields and a sample payload. */
export async function listEventTypes() {
  if (!eventTypes) {
    eventTypes = get("event-types").then((answer) => answer.items);
    eventTypes.catch(() => {
      eventTypes = null;
    });
  }
  return eventTypes;
}
