// The console's shell: the API key field, the progress bar, the notice line and the hash router.
// Each page is a module exporting render(context); context = {view, params, query, signal, navigate}.

import { ApiError, apiKey, get, onActivity, setApiKey } from "./api.js";
import { clear, h } from "./ui.js";
import * as campaigns from "./campaigns.js";
import * as dlq from "./dlq.js";
import * as notifications from "./notifications.js";
import * as overview from "./overview.js";
import * as segments from "./segments.js";
import * as templates from "./templates.js";
import * as webhooks from "./webhooks.js";

// [pattern, page, nav entry]; the first match wins.
const ROUTES = [
  [/^\/?$/, overview.render, ""],
  [/^\/notifications\/?$/, notifications.lookup, "notifications"],
  [/^\/notifications\/([^/]+)$/, notifications.job, "notifications"],
  [/^\/events\/([^/]+)$/, notifications.event, "notifications"],
  [/^\/users\/?$/, notifications.lookup, "users"],
  [/^\/users\/([^/]+)$/, notifications.user, "users"],
  [/^\/templates\/?$/, templates.list, "templates"],
  [/^\/templates\/new$/, templates.editor, "templates"],
  [/^\/templates\/([^/]+)$/, templates.editor, "templates"],
  [/^\/campaigns\/?$/, campaigns.list, "campaigns"],
  [/^\/campaigns\/new$/, campaigns.editor, "campaigns"],
  [/^\/campaigns\/([^/]+)$/, campaigns.editor, "campaigns"],
  [/^\/segments\/?$/, segments.list, "segments"],
  [/^\/segments\/([^/]+)$/, segments.detail, "segments"],
  [/^\/webhooks\/?$/, webhooks.list, "webhooks"],
  [/^\/webhooks\/([^/]+)$/, webhooks.detail, "webhooks"],
  [/^\/dlq\/?$/, dlq.render, "dlq"],
];

const view = document.getElementById("view");
const notice = document.getElementById("notice");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("api-key");
const keyState = document.getElementById("key-state");
const progress = document.getElementById("progress");
let current = null; // the page's AbortController: navigating away cancels its requests and timers

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showNotice(text, kind = "bad") {
  if (!text) {
    notice.hidden = true;
    notice.textContent = "";
    return;
  }
  notice.className = `notice ${kind}`;
  notice.textContent = text;
  notice.hidden = false;
}

function setKeyState(text, kind = "") {
  keyState.textContent = text;
  keyState.className = `key-state ${kind ? `state-${kind}` : ""}`;
}

async function checkKey() {
  // Any call says whether the key is known; the overview's also whether it is an admin's.
  try {
    await get("overview");
    setKeyState("Key accepted (admin)", "ok");
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 403) {
      setKeyState("Key accepted, without the admin scope: some pages will be refused", "warn");
      return true;
    }
    if (error.status === 401) return false; // the api-key-refused listener says so
    setKeyState(`Key not checked: ${error.explanation}`, "warn");
    return true;
  }
}

keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = keyInput.value.trim();
  if (!value) return;
  setApiKey(value);
  keyInput.value = "";
  showNotice("");
  setKeyState("Checking the key…");
  if (await checkKey()) route();
});

document.getElementById("forget-key").addEventListener("click", () => {
  setApiKey("");
  setKeyState("No key");
  showNotice("");
  route();
});

window.addEventListener("api-key-refused", (event) => {
  setApiKey("");
  setKeyState("No key", "bad");
  showNotice(event.detail.explanation);
  keyInput.focus();
});

// The bar shows only for waits a person notices; aria-busy tells assistive technology.
let shown = null;
onActivity((pending) => {
  clearTimeout(shown);
  if (pending > 0) {
    view.setAttribute("aria-busy", "true");
    shown = setTimeout(() => {
      progress.hidden = false;
    }, 250);
  } else {
    view.removeAttribute("aria-busy");
    progress.hidden = true;
  }
});

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

function route() {
  if (current) current.abort();
  current = new AbortController();
  const { path, query } = parseHash();
  const found = ROUTES.map(([pattern, page, nav]) => [path.match(pattern), page, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll("#nav a")) {
    const active = found && a.dataset.page === found[2];
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!apiKey()) {
    document.title = "Notification console";
    clear(
      view,
      h("h1", {}, "Notification console"),
      h("p", { class: "lead" }, "Enter an API key in the “API key” field above to start."),
      h(
        "p",
        { class: "muted" },
        "The console uses the service's JSON API with your key, so it shows and changes what that key may: " +
          "admin for everything, or notifications:read, templates:read/write, campaigns:read/write, webhooks:read/write.",
      ),
    );
    keyInput.focus();
    return;
  }
  const notFound = () =>
    clear(view, h("h1", {}, "Not found"), h("p", {}, "No page at this address. "), h("a", { href: "#/" }, "Overview"));
  if (!found) {
    notFound();
    return;
  }
  const [match, page] = found;
  let params;
  try {
    params = match.slice(1).map((p) => decodeURIComponent(p));
  } catch (error) {
    if (!(error instanceof URIError)) throw error;
    notFound(); // a malformed escape (a lone %, say) names no id
    return;
  }
  clear(view);
  const context = { view, params, query, signal: current.signal, navigate };
  Promise.resolve(page(context)).catch((error) => {
    if (error.name === "AbortError") return;
    clear(view, h("h1", {}, "Something went wrong"), h("div", { class: "error", role: "alert" }, error.explanation || String(error)));
  });
  if (document.activeElement === document.body || !document.activeElement) view.focus({ preventScroll: true });
}

// The skip link moves focus to the page without touching the hash (the hash is the router's).
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});

window.addEventListener("hashchange", () => {
  showNotice("");
  route();
});

if (apiKey()) {
  setKeyState("Key set for this tab");
  checkKey();
}
route();
