// The in-app inbox as a front end uses it (docs/INBOX.md): plain JavaScript, no build step, no dependency.
//
// 1. Get a user token. Here from the local stack's dev-only POST /dev/users/{id}/tokens; in a real app your
//    backend asks POST /api/v1/users/{id}/tokens with its API key (scope users:token) and hands the token over.
// 2. Read the inbox with Authorization: Bearer <token>.
// 3. Open the WebSocket with ?token=<token>: "notification" frames bring new items, "counts" frames the badges.
// 4. Mark items seen, read, unread or archived; every change comes back as a counts frame on every tab.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  // The WebSocket URL: ?ws=… or the local stack's default port on this host.
  const WS_URL = params.get("ws") || `ws://${location.hostname}:3002/`;
  const PAGE = 20;
  const PING_MS = 5 * 60 * 1000; // API Gateway closes a connection idle for 10 minutes

  const $ = (id) => document.getElementById(id);
  const state = { user: null, token: null, expiresAt: 0, socket: null, cursor: null, filter: "all", retry: 0,
    ping: null, shown: new Map() };

  // -- the API --------------------------------------------------------------------------------------------

  async function errorOf(response) {
    try {
      const body = await response.json(); // {"error": {"code", "message", "fields"?}}
      const error = body.error || {};
      const fields = (error.fields || []).map((f) => `${f.loc}: ${f.msg}`).join("; ");
      return [error.message || `${response.status} ${response.statusText}`, fields].filter(Boolean).join(" — ");
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  async function fetchToken() {
    // JSON, even without a body: the dev route refuses what a page of another site could send without asking.
    const response = await fetch(`/dev/users/${encodeURIComponent(state.user)}/tokens`,
      { method: "POST", headers: { "Content-Type": "application/json" } });
    if (!response.ok) throw new Error(`token: ${await errorOf(response)}`);
    const body = await response.json();
    state.token = body.token;
    state.expiresAt = Date.parse(body.expires_at);
  }

  async function inbox(method, path) {
    if (!state.token || Date.now() > state.expiresAt - 60_000) await fetchToken();
    let response = await fetch(path, { method, headers: { Authorization: `Bearer ${state.token}` } });
    if (response.status === 401) { // expired in between: one fresh token, one more try
      await fetchToken();
      response = await fetch(path, { method, headers: { Authorization: `Bearer ${state.token}` } });
    }
    if (!response.ok) throw new Error(await errorOf(response));
    return response.json();
  }

  // -- rendering ------------------------------------------------------------------------------------------

  function showError(error) {
    $("error").textContent = error ? String(error.message || error) : "";
    $("error").hidden = !error;
  }

  function showCounts(counts) {
    $("unseen-count").textContent = counts.unseen;
    $("unread-count").textContent = counts.unread;
    $("total-count").textContent = counts.total;
    const badge = $("unread-badge");
    badge.textContent = counts.unread > 99 ? "99+" : String(counts.unread);
    badge.classList.toggle("zero", counts.unread === 0);
  }

  function matches(item) {
    switch (state.filter) {
      case "unread": return !item.read_at && !item.archived_at;
      case "unseen": return !item.seen_at && !item.archived_at;
      case "archived": return Boolean(item.archived_at);
      default: return !item.archived_at;
    }
  }

  function render(item, { prepend = false } = {}) {
    const old = state.shown.get(item.id);
    if (!matches(item)) {
      if (old) { old.remove(); state.shown.delete(item.id); }
      $("empty").hidden = state.shown.size > 0;
      return;
    }
    const li = document.createElement("li");
    li.dataset.id = item.id;
    li.className = item.read_at ? "read" : "unread";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = item.title || item.event_type;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = item.truncated ? "(open to read)" : (item.body || "");
    const meta = document.createElement("time");
    meta.className = "meta";
    meta.dateTime = item.created_at;
    meta.title = item.created_at;
    meta.textContent = new Date(item.created_at).toLocaleString();
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(
      button(item.read_at ? "Mark unread" : "Mark read", item.read_at ? "unread" : "read", item),
      button(item.archived_at ? "Archived" : "Archive", "archive", item, Boolean(item.archived_at)),
    );
    li.append(title, actions, body, meta);
    if (old) old.replaceWith(li);
    else if (prepend) $("items").prepend(li);
    else $("items").append(li);
    state.shown.set(item.id, li);
    $("empty").hidden = true;
  }

  function button(label, action, item, disabled = false) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.disabled = disabled;
    b.dataset.action = action;
    b.setAttribute("aria-label", `${label}: ${item.title || item.event_type}`);
    b.addEventListener("click", () => mark(item.id, action));
    return b;
  }

  async function mark(id, action) {
    try {
      const { item, counts } = await inbox("POST", `/api/v1/inbox/${id}/${action}`);
      render(item);
      showCounts(counts);
    } catch (error) {
      showError(error);
    }
  }

  async function markSeen(items) {
    // Shown while the tab is visible: seen (not read). The counts frame updates every tab.
    if (document.visibilityState !== "visible") return;
    for (const item of items.filter((i) => !i.seen_at)) await mark(item.id, "seen");
  }

  async function load(more = false) {
    if (!more) {
      $("items").replaceChildren();
      state.shown.clear();
      state.cursor = null;
    }
    const query = new URLSearchParams({ status: state.filter, limit: String(PAGE) });
    if (state.cursor) query.set("cursor", state.cursor);
    const page = await inbox("GET", `/api/v1/inbox?${query}`);
    page.items.forEach((item) => render(item));
    showCounts(page.counts);
    state.cursor = page.next_cursor;
    $("more").hidden = !state.cursor;
    $("empty").hidden = state.shown.size > 0;
    markSeen(page.items);
  }

  // -- the WebSocket ----------------------------------------------------------------------------------------

  function setConnection(text, live) {
    $("connection").textContent = text;
    $("connection").classList.toggle("live", live);
  }

  async function openSocket() {
    if (!state.token || Date.now() > state.expiresAt - 60_000) await fetchToken();
    const socket = new WebSocket(`${WS_URL}?token=${encodeURIComponent(state.token)}`);
    state.socket = socket;
    const reconnecting = state.retry > 0;
    socket.addEventListener("open", () => {
      state.retry = 0;
      setConnection(`Live as ${state.user}`, true);
      // Frames sent while the socket was down are lost: read the list and the counts again.
      if (reconnecting) load().catch(showError);
      clearInterval(state.ping);
      state.ping = setInterval(() => socket.send(JSON.stringify({ action: "ping" })), PING_MS);
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "notification") {
        if (frame.item.truncated) load(); // too big for one frame: read it from the API
        else { render(frame.item, { prepend: true }); markSeen([frame.item]); }
        if (frame.counts) showCounts(frame.counts);
      } else if (frame.type === "counts") {
        showCounts(frame);
      } else if (frame.type === "closed" && frame.reason === "connection_limit") {
        // The user's newer connections (another tab or device) pushed this one out: reconnecting by itself
        // would push one of them out in turn, so only the Connect button opens it again.
        state.replaced = socket;
      }
    });
    socket.addEventListener("close", () => {
      clearInterval(state.ping);
      if (state.socket !== socket) return; // an old socket (the user switched): nothing to reconnect
      if (state.replaced === socket) {
        state.socket = null;
        setConnection("Closed: opened in another tab or device. Connect to take it back.", false);
        return;
      }
      // API Gateway closes connections after 2 hours (and idle ones after 10 minutes): reconnect, backing off.
      const wait = Math.min(30_000, 500 * 2 ** state.retry++);
      setConnection(`Reconnecting in ${Math.round(wait / 1000)} s…`, false);
      setTimeout(() => {
        if (state.socket === socket) openSocket().catch(showError); // unless the user switched meanwhile
      }, wait);
    });
  }

  async function connect(user) {
    const old = state.socket;
    state.socket = null; // its close event, whenever it comes, no longer schedules a reconnect
    if (old) old.close();
    Object.assign(state, { user, token: null, expiresAt: 0, retry: 0 });
    showError(null);
    setConnection("Connecting…", false);
    try {
      await fetchToken();
      $("inbox").hidden = false;
      await load();
      await openSocket();
    } catch (error) {
      setConnection("Not connected", false);
      showError(error);
    }
  }

  $("connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("user-id").reportValidity()) connect($("user-id").value.trim());
  });
  $("filter").addEventListener("change", () => { state.filter = $("filter").value; load().catch(showError); });
  $("more").addEventListener("click", () => load(true).catch(showError));
  $("read-all").addEventListener("click", async () => {
    try {
      const { counts } = await inbox("POST", "/api/v1/inbox/read-all");
      showCounts(counts);
      await load();
    } catch (error) {
      showError(error);
    }
  });
})();
