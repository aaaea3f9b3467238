// #/webhooks : the status webhook endpoints (issue 24), each with its events and whether it is enabled (else why
// not), and a form that creates one (webhookForm); its signing secret is shown that once (secretBox).
// #/webhooks/{id} : an endpoint: its facts with Send test, Rotate secret, Enable or Disable, and Delete
// (webhookState), its form (url, events, description) and its deliveries, newest first, paged with the API's cursor.

import { del, get, patch, post, seg } from "./api.js";
import {
  browserZone, busy, clear, cursorPager, errorBox, facts, field, h, info, link, localPager, mount, pageTitle, section,
  table, time, uid,
} from "./ui.js";

// The message types an endpoint may subscribe to, as notify.webhooks.EVENT_TYPES has them (the browser test checks
// that they agree). "*" is every type, those added later too; webhook.test goes to every endpoint on request.
const EVENTS = [
  "notification.sent",
  "notification.delivered",
  "notification.bounced",
  "notification.complained",
  "notification.failed",
  "notification.expired",
  "notification.skipped",
  "notification.digested",
  "notification.opened",
  "notification.clicked",
  "inbox.read",
  "digest.sent",
];
const ALL = "*";
const REASONS = {
  gone: "its URL answered 410 Gone",
  failing: "its deliveries failed for 24 hours",
  by_user: "disabled by an operator",
};
const OUTCOMES = { delivered: "ok", gone: "bad", retry: "warn" };
const DELIVERIES_PAGE = 25;

const eventsText = (events) => events.map((e) => (e === ALL ? "* (all)" : e)).join(", ");

/** Enabled, or disabled with its reason said plainly. */
function statusOf(endpoint) {
  const enabled = endpoint.status === "enabled";
  const reason = endpoint.disabled_reason;
  return h(
    "span",
    {},
    h("span", { class: `badge ${enabled ? "ok" : "bad"}` }, endpoint.status),
    enabled ? null : h("span", { class: "muted" }, ` ${REASONS[reason] || reason || ""}`),
  );
}

/**
 * The event checkboxes: "*" and each type (and any type `current` holds that this list lacks). With "*" checked the
 * others are disabled, as they add nothing. Returns {element, value()} (the API's `events`).
 */
function eventsPicker(current = []) {
  const all = h("input", { type: "checkbox", name: "events", value: ALL, id: uid("event"), checked: current.includes(ALL) });
  const names = [...EVENTS, ...current.filter((e) => e !== ALL && !EVENTS.includes(e))];
  const boxes = names.map((e) => h("input", { type: "checkbox", name: "events", value: e, id: uid("event"), checked: current.includes(e) }));
  const sync = () => {
    for (const box of boxes) box.disabled = all.checked;
  };
  all.addEventListener("change", sync);
  sync();
  const element = h(
    "fieldset",
    { class: "channels events" },
    h("legend", {}, "Events"),
    h("label", { for: all.id, class: "check" }, all, " * every event type, those added later too"),
    h("div", { class: "event-boxes" }, boxes.map((box) => h("label", { for: box.id, class: "check mono" }, box, ` ${box.value}`))),
  );
  return { element, value: () => (all.checked ? [ALL] : boxes.filter((b) => b.checked).map((b) => b.value)) };
}

/**
 * The form of an endpoint: its URL, events and description. New (`current` null), it reads as the API's create
 * body; saved, as a PATCH of what changed (null: nothing did). The API's field errors mark their fields.
 */
function webhookForm(current) {
  const url = h("input", { name: "url", type: "url", required: true, spellcheck: "false", autocomplete: "off", class: "mono", value: current ? current.url : "" });
  const description = h("input", { name: "description", maxlength: "200", autocomplete: "off", value: current ? current.description || "" : "" });
  const events = eventsPicker(current ? current.events : []);
  const save = h("button", { type: "submit" }, current ? "Save changes" : "Create webhook");
  const outcome = h("div", { "aria-live": "polite" });
  const element = h(
    "form",
    { class: "editor", novalidate: true },
    field("URL", url, "https only (the local stack also takes http://127.0.0.1); its host must resolve to public addresses; redirects are not followed"),
    events.element,
    field("Description", description, "optional, at most 200 characters"),
    h("div", { class: "actions" }, save),
    outcome,
  );

  function body() {
    const wanted = { url: url.value.trim(), events: events.value(), description: description.value.trim() };
    if (!current) return wanted.description ? wanted : { url: wanted.url, events: wanted.events };
    const changes = {};
    if (wanted.url !== current.url) changes.url = wanted.url;
    if ([...wanted.events].sort().join(" ") !== [...current.events].sort().join(" ")) changes.events = wanted.events;
    if (wanted.description !== (current.description || "")) changes.description = wanted.description; // "" removes it
    return Object.keys(changes).length ? changes : null;
  }

  function showErrors(error) {
    const bad = new Set((error.fields || []).map((f) => f.loc.split(".").pop()));
    url.setAttribute("aria-invalid", bad.has("url") ? "true" : "false");
    description.setAttribute("aria-invalid", bad.has("description") ? "true" : "false");
    clear(outcome, errorBox(error));
  }

  return {
    element,
    save,
    body,
    showErrors,
    /** What saving came to, under the button. */
    say: (...nodes) => clear(outcome, ...nodes),
    /** After a save: the endpoint as it now is (the next save compares with it), or (creating) an empty form. */
    saved: (next) => {
      url.removeAttribute("aria-invalid");
      description.removeAttribute("aria-invalid");
      clear(outcome);
      if (current) {
        current = next;
        return;
      }
      element.reset();
      events.element.querySelector(`input[value="${ALL}"]`).dispatchEvent(new Event("change"));
    },
  };
}

/**
 * A signing secret, shown the once the API answers it (a new endpoint's, a rotation's), with a button that copies
 * it; *Hide* removes it from the page. Nothing keeps it: leaving the page forgets it.
 */
function secretBox(answer, { rotated = false } = {}) {
  const headingId = uid("secret");
  const value = h("code", { class: "secret-value" }, answer.secret);
  const said = h("span", { class: "muted", role: "status" });
  const copy = h("button", { type: "button", class: "secondary" }, "Copy secret");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(answer.secret);
      said.textContent = "Copied to the clipboard.";
    } catch {
      window.getSelection().selectAllChildren(value);
      said.textContent = "The browser did not allow copying: it is selected, press Ctrl+C (⌘C).";
    }
  });
  const element = h(
    "section",
    { class: "secret", "aria-labelledby": headingId },
    h("h2", { id: headingId }, rotated ? "New signing secret" : "Signing secret"),
    h("p", {}, rotated ? `The new secret of ${answer.url}:` : `The secret ${answer.url} verifies its messages with:`),
    h("p", { class: "secret-row" }, value, copy, said),
    h(
      "p",
      {},
      h("strong", {}, "Copy it now: you won't see it again. "),
      "The service shows a secret only when it makes one; a lost secret can only be replaced (Rotate secret).",
    ),
    rotated
      ? h("p", {}, "The old secret keeps signing beside the new one for 24 hours (each message then carries two signatures), so receivers can switch without missing a message.")
      : null,
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", on: { click: () => element.remove() } }, "I have saved it: hide it")),
  );
  return element;
}

/** #/webhooks */
export async function list({ view, signal }) {
  const body = h("div");
  const created = h("div", { "aria-live": "polite" });
  const form = webhookForm(null);
  mount(
    view,
    pageTitle(view, "Webhooks"),
    h(
      "p",
      { class: "muted" },
      "Status webhooks: what happens to each notification (sent, delivered, bounced, opened…), POSTed to your " +
        "endpoints as Standard Webhooks messages, signed with the endpoint's secret and retried for 24 hours. " +
        `Times in ${browserZone()}.`,
    ),
    created,
    body,
    section("New webhook", form.element),
  );

  async function show() {
    try {
      const answer = await get("webhooks", { signal });
      clear(
        body,
        localPager(answer.items, (page) =>
          table(
            [
              { label: "URL", cell: (w) => link(`#/webhooks/${seg(w.webhook_id)}`, w.url) },
              { label: "Events", cell: (w) => eventsText(w.events) },
              { label: "Status", cell: statusOf },
              { label: "Description", cell: (w) => w.description || h("span", { class: "muted" }, "—") },
              { label: "Created", cell: (w) => time(w.created_at) },
            ],
            page,
            { empty: "No webhooks yet: create one below." },
          ),
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") clear(body, errorBox(error));
    }
  }

  form.element.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.say();
    try {
      const answer = await busy(form.save, "Creating…", () => post("webhooks", form.body()));
      form.saved(answer);
      clear(created, secretBox(answer));
      created.scrollIntoView({ block: "nearest" });
      show();
    } catch (error) {
      form.showErrors(error);
    }
  });
  show();
}

/** An endpoint's facts, with Send test, Rotate secret, Enable or Disable, and Delete; `tested()` follows a test. */
function webhookState(endpoint, { navigate, tested }) {
  const element = h("div");
  const outcome = h("div", { "aria-live": "polite" });
  const secret = h("div", { "aria-live": "polite" }); // a rotation's secret, which the other actions leave in place
  const path = `webhooks/${seg(endpoint.webhook_id)}`;

  async function act(button, busyText, action) {
    try {
      await busy(button, busyText, action);
    } catch (error) {
      clear(outcome, errorBox(error));
    }
  }

  function show(next) {
    endpoint = next;
    const enabled = endpoint.status === "enabled";
    // A disabled endpoint's messages are dropped, so the API refuses a test of one (409): enable it first.
    const test = h("button", { type: "button", class: "secondary", disabled: !enabled, title: enabled ? undefined : "Enable it to test it" }, "Send test");
    test.addEventListener("click", () =>
      act(test, "Sending…", async () => {
        const queued = await post(`${path}/test`);
        clear(outcome, info(`A webhook.test message (${queued.message_id}) is queued: its attempt shows under Deliveries within seconds.`));
        tested();
      }),
    );
    const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
    rotate.addEventListener("click", () => {
      if (!window.confirm("Make a new signing secret? The current one keeps signing beside it for 24 hours (a rotation within those 24 hours retires the oldest at once).")) return;
      act(rotate, "Rotating…", async () => {
        const answer = await post(`${path}/rotate-secret`);
        show(answer);
        clear(outcome);
        clear(secret, secretBox(answer, { rotated: true }));
      });
    });
    const toggle = h("button", { type: "button", class: "secondary" }, enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", () =>
      act(toggle, "…", async () => {
        const answer = await patch(path, { enabled: !enabled });
        show(answer);
        clear(outcome, info(enabled ? "Disabled: it gets no messages (those queued for it are dropped) until it is enabled." : "Enabled: messages go to it again."));
      }),
    );
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", () => {
      if (!window.confirm(`Delete the webhook to ${endpoint.url}? Messages queued for it are dropped, and its secret stops signing.`)) return;
      act(remove, "Deleting…", async () => {
        await del(path);
        navigate("#/webhooks");
      });
    });
    clear(
      element,
      facts([
        ["URL", h("span", { class: "mono" }, endpoint.url)],
        ["Status", statusOf(endpoint)],
        ["Events", eventsText(endpoint.events)],
        ["Description", endpoint.description],
        ["Created", time(endpoint.created_at)],
        ["Updated", time(endpoint.updated_at)],
        ["Webhook id", h("span", { class: "mono" }, endpoint.webhook_id)],
      ]),
      h("div", { class: "actions" }, test, rotate, toggle, remove),
      outcome,
      secret,
    );
  }
  show(endpoint);
  return { element, show };
}

/** An endpoint's attempts, newest first, DELIVERIES_PAGE a page, with the API's cursors. */
function webhookDeliveries(webhookId, signal) {
  const pager = cursorPager({
    signal,
    load: (cursor) => get(`webhooks/${seg(webhookId)}/deliveries`, { query: { limit: DELIVERIES_PAGE, cursor }, signal }),
    render: (items) =>
      table(
        [
          { label: "Time", cell: (d) => time(d.at) },
          { label: "Message", cell: (d) => h("span", { class: "mono" }, d.message_id) },
          { label: "Type", cell: (d) => d.message_type },
          { label: "Attempt", cell: (d) => String(d.attempt), class: "num" },
          { label: "Outcome", cell: (d) => h("span", { class: `badge ${OUTCOMES[d.outcome] || ""}` }, d.outcome) },
          { label: "Status code", cell: (d) => (d.status_code ?? h("span", { class: "muted" }, "—")), class: "num" },
          { label: "Latency", cell: (d) => `${d.latency_ms} ms`, class: "num" },
          { label: "Error", cell: (d) => d.error || "" },
        ],
        items,
        { empty: "No attempts yet (they are kept 30 days)." },
      ),
  });
  const refresh = h("button", { type: "button", class: "secondary", on: { click: () => pager.first() } }, "Refresh");
  return { element: [h("div", { class: "actions" }, refresh), pager.element], first: pager.first };
}

/** #/webhooks/{webhook_id} */
export async function detail({ view, params: [webhookId], signal, navigate }) {
  let endpoint;
  try {
    endpoint = await get(`webhooks/${seg(webhookId)}`, { signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    mount(view, pageTitle(view, "Webhook"), errorBox(error), link("#/webhooks", "All webhooks"));
    return;
  }
  const deliveries = webhookDeliveries(webhookId, signal);
  const state = webhookState(endpoint, {
    navigate,
    tested: () => {
      // The worker takes the test from the delay queue within seconds: list the attempts again after a moment.
      const timer = setTimeout(() => deliveries.first(), 3000);
      signal.addEventListener("abort", () => clearTimeout(timer));
    },
  });
  const form = webhookForm(endpoint);
  form.element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = form.body();
    if (!changes) {
      form.say(info("Nothing changed."));
      return;
    }
    try {
      const answer = await busy(form.save, "Saving…", () => patch(`webhooks/${seg(webhookId)}`, changes));
      form.saved(answer);
      state.show(answer);
      form.say(info("Saved."));
    } catch (error) {
      form.showErrors(error);
    }
  });
  mount(
    view,
    pageTitle(view, `Webhook ${endpoint.url}`),
    h("p", {}, link("#/webhooks", "← All webhooks")),
    state.element,
    section("Edit", form.element),
    section("Deliveries", h("p", { class: "muted" }, `Each attempt, newest first: a retry is a row of its own with the same message id. Times in ${browserZone()}.`), deliveries.element),
  );
  deliveries.first();
}
