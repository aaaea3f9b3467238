// #/templates : every template by event type × channel × locale, the throttle rules (throttleRules) and the digest
// rules (digestRules).
// #/templates/{id} and #/templates/new : the editor, with a server-side preview as you type (debounced) and the
// validation errors at their lines; saving makes a new version. The editor is its form (templateForm), its preview
// (templatePreview), its saving (saveTemplate) and its versions (templateVersions).

import { ApiError, CHANNELS, del, get, listEventTypes, post, put, replacing, seg } from "./api.js";
import { codeEditor, eventTypeSelect, filters, samplePayload } from "./forms.js";
import {
  busy, clear, debounce, errorBox, field, h, info, link, localPager, message, mount, pageTitle, section, table, time,
  timeText, uid,
} from "./ui.js";

const PARTS = { email: ["subject", "body_text", "body_html"], push: ["title", "body"], websocket: ["title", "body"] };
const LABELS = { subject: "Subject", body_text: "Text body", body_html: "HTML body", title: "Title", body: "Body" };
const ROWS = { subject: 2, title: 2, body_text: 9, body_html: 9, body: 6 };
const THROTTLED = ["social", "content", "marketing"]; // account mail is never throttled

/**
 * The event types, then the digest variant of each that takes one (account types never do): `review_liked.digest`,
 * labelled "review_liked (digest)", with its type's payload and `digest: true`.
 */
function withDigestVariants(types) {
  const variants = types
    .filter((t) => t.category !== "account")
    .map((t) => ({ ...t, event_type: `${t.event_type}.digest`, label: `${t.event_type} (digest)`, digest: true }));
  return [...types, ...variants];
}

async function eventTypes() {
  try {
    return await listEventTypes();
  } catch {
    return []; // any valid key may read them; the page's own calls show what went wrong
  }
}

/** #/templates */
export async function list({ view, query, signal, navigate }) {
  const types = await eventTypes();
  const { form, selects } = filters(
    { base: "#/templates", query, navigate },
    { label: "Event type", name: "event_type", values: withDigestVariants(types).map((t) => t.event_type) },
    { label: "Channel", name: "channel", values: CHANNELS },
  );
  const { event_type: eventType, channel } = selects;
  const body = h("div");
  const throttles = throttleRules(signal);
  const digests = digestRules(types, signal);
  mount(view,
    pageTitle(view, "Templates", h("a", { href: "#/templates/new", class: "button" }, "New template")),
    h("p", { class: "muted" }, "The newest version of each template: an event type's row, a channel's column, a locale each. Open one to edit it and see its versions."),
    form,
    body,
    throttles.element,
    digests.element,
  );
  throttles.show();
  digests.show();
  try {
    const answer = await get("templates", { query: { event_type: eventType.value, channel: channel.value }, signal });
    // A matrix: a row per event type, a column per channel, each cell the locales that have a template.
    const names = [...new Set([...types.map((t) => t.event_type), ...answer.items.map((t) => t.event_type)])]
      .filter((name) => !eventType.value || name === eventType.value)
      .sort();
    const shown = channel.value ? [channel.value] : CHANNELS;
    const cell = (name, ch) => {
      const found = answer.items
        .filter((t) => t.event_type === name && t.channel === ch)
        .sort((a, b) => a.locale.localeCompare(b.locale));
      const add = h("a", { href: `#/templates/new?event_type=${seg(name)}&channel=${ch}`, class: "add", "aria-label": `New ${name} ${ch} template` }, "+ add");
      return h(
        "div",
        { class: "chips" },
        found.map((t) =>
          h("a", { href: `#/templates/${seg(t.template_id)}`, class: "chip", "aria-label": `${t.template_id} (v${t.version})`, title: `v${t.version}, saved ${timeText(t.created_at)}` }, t.locale, h("span", { class: "muted" }, ` v${t.version}`)),
        ),
        add,
      );
    };
    clear(
      body,
      h("p", { class: "muted" }, `${answer.items.length} template${answer.items.length === 1 ? "" : "s"}, by locale.`),
      localPager(names, (page) =>
        table(
          [{ label: "Event type", cell: (name) => h("strong", {}, name) }, ...shown.map((ch) => ({ label: ch, cell: (name) => cell(name, ch) }))],
          page,
          { empty: "No templates match." },
        ),
      ),
    );
  } catch (error) {
    if (error.name !== "AbortError") clear(body, errorBox(error));
  }
}

/** A period as a person says it: "1 day", "6 hours", "90 minutes", else seconds. */
function periodText(seconds) {
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (seconds % size === 0) return `${seconds / size} ${unit}${seconds === size ? "" : "s"}`;
  }
  return `${seconds} seconds`;
}

/**
 * A panel of rules (the throttle rules, the digest rules): `about`, the rules GET `path` answers in a table of
 * `columns` and a Remove button each, `form` that sets one, and what the last change did. `removal(rule)` says how a
 * rule is removed ({label, path, query, said}); `setting()`, when `form` is submitted with its button `save`, what is
 * put ({path, body, said(rule)}). After a change the rules are listed again. Returns {element, show}.
 */
function rulePanel({ title, about, path, columns, empty, form, save, removal, setting, signal }) {
  const listed = h("div");
  const outcome = h("div", { "aria-live": "polite" });

  async function change(button, busyText, action, said) {
    try {
      const answer = await busy(button, busyText, action);
      clear(outcome, info(said(answer)));
      show();
    } catch (error) {
      clear(outcome, errorBox(error));
    }
  }

  const remove = (r) => {
    const { label, path: rulePath, query, said } = removal(r);
    return h(
      "button",
      {
        type: "button",
        class: "secondary",
        "aria-label": label,
        on: { click: (event) => change(event.currentTarget, "Removing…", () => del(rulePath, { query }), () => said) },
      },
      "Remove",
    );
  };

  async function show() {
    try {
      const answer = await get(path, { signal });
      clear(listed, table([...columns, { label: "", cell: remove }], answer.items, { empty }));
    } catch (error) {
      if (error.name !== "AbortError") clear(listed, errorBox(error));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const { path: rulePath, body, said } = setting();
    change(save, "Saving…", () => put(rulePath, body), said);
  });
  return { element: section(title, h("p", { class: "muted" }, about), listed, form, outcome), show };
}

/**
 * The throttle rules (at most N of a category on a channel per period, per user): listed, each with a button that
 * removes it, and a form that sets one (a category and channel's rule replaces the one it had).
 */
function throttleRules(signal) {
  const category = h("select", { name: "category" }, THROTTLED.map((c) => h("option", { value: c }, c)));
  const channel = h("select", { name: "channel" }, CHANNELS.map((c) => h("option", { value: c }, c)));
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 10000, value: "1" });
  const period = h("input", { name: "period_seconds", type: "number", min: 60, max: 2592000, value: "86400" });
  const save = h("button", { type: "submit" }, "Set rule");
  const form = h(
    "form",
    { class: "editor", novalidate: true },
    h(
      "div",
      { class: "row" },
      field("Category", category),
      field("Channel", channel),
      field("At most", limit, "1 to 10,000 notifications"),
      field("Per (seconds)", period, "86400 is a day; 60 to 2592000"),
    ),
    h("div", { class: "actions" }, save),
  );
  return rulePanel({
    title: "Throttle rules",
    about: "At most N notifications of a category on a channel per period, for each user; past it a notification is skipped (throttled). Account mail is never throttled. Workers apply a change within 30 s.",
    path: "throttle-rules",
    columns: [
      { label: "Category", cell: (r) => r.category },
      { label: "Channel", cell: (r) => r.channel },
      { label: "At most", cell: (r) => `${r.limit} per ${periodText(r.period_seconds)}` },
      { label: "Set", cell: (r) => time(r.updated_at) },
    ],
    empty: "No throttle rules: every notification a user's preferences allow is sent.",
    form,
    save,
    removal: (r) => ({
      label: `Remove the ${r.category} ${r.channel} rule`,
      path: `throttle-rules/${seg(r.category)}`,
      query: { channel: r.channel },
      said: `Removed: ${r.category} ${r.channel} is no longer throttled.`,
    }),
    setting: () => ({
      path: `throttle-rules/${seg(category.value)}`,
      body: { channel: channel.value, limit: Number(limit.value), period_seconds: Number(period.value) },
      said: (r) => `Set: at most ${r.limit} ${r.category} ${r.channel} per ${periodText(r.period_seconds)} for each user.`,
    }),
    signal,
  });
}

/** A digest rule's window as a person says it: "20 minutes after the first" or "0 9 * * * (Europe/Berlin)". */
function windowText(window) {
  if (window.seconds !== undefined) return `${periodText(window.seconds)} after the first`;
  return `${window.cron} (${window.timezone || "the user's zone, else UTC"})`;
}

/**
 * The digest rules (an event type's notifications on some channels collected into one per window, per user and key
 * values): listed, each with a button that removes it, and a form that sets one (an event type's rule replaces the
 * one it had). Account events take no rule, so they are not offered.
 */
function digestRules(types, signal) {
  const digestible = types.filter((t) => t.category !== "account");
  const eventType = eventTypeSelect(digestible);
  const channelBoxes = CHANNELS.map((c) => h("input", { type: "checkbox", name: "channels", value: c, id: uid(`digest-${c}`), checked: c === "email" }));
  const kind = h("select", { name: "window" }, h("option", { value: "seconds" }, "seconds after the first"), h("option", { value: "cron" }, "a cron schedule"));
  const seconds = h("input", { name: "seconds", type: "number", min: 10, max: 604800, value: "3600" });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: uid("digest-zones") }, ["UTC", ...zones].map((z) => h("option", { value: z })));
  const cron = h("input", { name: "cron", value: "0 9 * * *", spellcheck: "false", autocomplete: "off", class: "mono" });
  const timezone = h("input", { name: "timezone", list: zoneList.id, spellcheck: "false", autocomplete: "off" });
  const key = h("input", { name: "key", spellcheck: "false", autocomplete: "off", class: "mono" });
  const maxItems = h("input", { name: "max_items", type: "number", min: 1, max: 1000, value: "100" });
  const fields = h("p", { class: "muted" });
  const save = h("button", { type: "submit" }, "Set digest rule");
  const bySeconds = field("Window (seconds)", seconds, "10 to 604800 (7 days), from the first notification");
  const byCron = h(
    "div",
    { class: "row" },
    field("Cron", cron, "in the user's time zone, e.g. 0 9 * * *"),
    field("Time zone", timezone, "for users without one; empty: UTC"),
  );

  function showWindow() {
    bySeconds.hidden = kind.value !== "seconds";
    byCron.hidden = kind.value !== "cron";
  }
  function showFields() {
    const spec = digestible.find((t) => t.event_type === eventType.value);
    fields.textContent = spec ? `${spec.event_type}'s payload fields: ${[...spec.required, ...spec.optional].join(", ")}` : "";
  }
  kind.addEventListener("change", showWindow);
  eventType.addEventListener("change", showFields);
  showWindow();
  showFields();

  const form = h(
    "form",
    { class: "editor", novalidate: true },
    h("div", { class: "row" }, field("Event type", eventType), field("Window", kind), field("Items at most", maxItems, "1 to 1000; a full digest goes out early")),
    h(
      "fieldset",
      { class: "channels" },
      h("legend", {}, "Channels"),
      channelBoxes.map((box) => h("label", { for: box.id, class: "check" }, box, ` ${box.value}`)),
    ),
    bySeconds,
    byCron,
    field("Split by (payload fields)", key, "comma-separated, e.g. review_id; empty: one digest per user"),
    fields,
    h("div", { class: "actions" }, save),
    zoneList,
  );
  return rulePanel({
    title: "Digest rules",
    about: "An event type's notifications on the chosen channels, collected into one per window for each user (and each value of the fields it is split by), rendered with the type's digest template. Account events take no rule. Workers apply a change within 30 s.",
    path: "digest-rules",
    columns: [
      { label: "Event type", cell: (r) => r.event_type },
      { label: "Channels", cell: (r) => r.channels.join(", ") },
      { label: "Window", cell: (r) => windowText(r.window) },
      { label: "Split by", cell: (r) => (r.key.length ? r.key.join(", ") : "user only") },
      { label: "At most", cell: (r) => `${r.max_items} items` },
      { label: "Set", cell: (r) => time(r.updated_at) },
    ],
    empty: "No digest rules: every notification is sent on its own.",
    form,
    save,
    removal: (r) => ({
      label: `Remove the ${r.event_type} digest rule`,
      path: `digest-rules/${seg(r.event_type)}`,
      said: `Removed: ${r.event_type} notifications are sent one by one.`,
    }),
    setting: () => {
      const zone = timezone.value.trim();
      const body = {
        channels: channelBoxes.filter((b) => b.checked).map((b) => b.value),
        window: kind.value === "seconds" ? { seconds: Number(seconds.value) } : { cron: cron.value.trim(), ...(zone ? { timezone: zone } : {}) },
        key: key.value.split(",").map((k) => k.trim()).filter(Boolean),
        max_items: Number(maxItems.value),
      };
      const said = (r) => `Set: ${r.event_type} on ${r.channels.join(", ")}, one digest per ${r.key.length ? r.key.join(", ") : "user"}, ${windowText(r.window)}, at most ${r.max_items} items.`;
      return { path: `digest-rules/${seg(eventType.value)}`, body, said };
    },
    signal,
  });
}

/**
 * The form of a template: its key (event type, channel and locale, fixed once saved), the channel's parts, a payload
 * to preview with, and a save button. It reads the parts as the API takes them, shows the API's field errors at
 * their lines, and calls the function given to onEdit after each edit.
 */
function templateForm(catalog, current, query) {
  const isNew = !current;
  const types = withDigestVariants(catalog);
  const eventType = eventTypeSelect(types, { disabled: !isNew, kept: current && current.event_type });
  for (const option of eventType.options) option.textContent = types.find((t) => t.event_type === option.value)?.label || option.value;
  const channel = h("select", { name: "channel", disabled: !isNew }, CHANNELS.map((c) => h("option", { value: c }, c)));
  const locale = h("input", { name: "locale", value: "en", disabled: !isNew, spellcheck: "false", autocomplete: "off", size: 8 });
  if (current) {
    eventType.value = current.event_type;
    channel.value = current.channel;
    locale.value = current.locale;
  } else {
    eventType.value = query.get("event_type") || (types[0] && types[0].event_type) || "";
    channel.value = query.get("channel") || "email";
  }
  const payload = codeEditor("payload", "Payload to preview with (JSON)", "", 6);
  const fillSample = samplePayload(types, eventType, payload);
  const variables = h("p", { class: "muted" });
  const parts = h("div");
  const general = h("div");
  const save = h("button", { type: "submit" }, isNew ? "Create template" : "Save as a new version");
  const outcome = h("div", { "aria-live": "polite" });
  let editors = {};
  let edited = () => {};

  function showSample() {
    const spec = fillSample();
    clear(
      variables,
      "Variables: ",
      h("code", {}, "user.id, user.email, user.first_name, user.last_name, user.locale"),
      ", ",
      h("code", {}, "event.event_id, event.unsubscribe_url"),
      spec ? [", and the payload's ", h("code", {}, [...spec.required, ...spec.optional].join(", ")), spec.optional.length ? ` (optional: ${spec.optional.join(", ")})` : ""] : "",
      spec && spec.digest
        ? [
          "; a digest's payload is its newest member's, and ",
          h("code", {}, "digest.count, digest.items[i].payload, digest.items[i].occurred_at, digest.first_at, digest.last_at"),
          " (the preview renders a digest of 3 members of the payload)",
        ]
        : "",
    );
  }

  /** The channel's parts, with `values` in them (a version's, or what the parts held before the channel changed). */
  function setParts(values) {
    editors = {};
    clear(
      parts,
      PARTS[channel.value].map((name) => {
        const editorOf = codeEditor(name, LABELS[name], values[name], ROWS[name]);
        editorOf.area.addEventListener("input", () => edited());
        editors[name] = editorOf;
        return editorOf.element;
      }),
    );
  }

  // The parts as the API takes them: an empty part is no part (null clears it in a new version).
  function content() {
    return Object.fromEntries(Object.entries(editors).map(([name, e]) => [name, e.value === "" ? null : e.value]));
  }

  function draft() {
    const body = { event_type: eventType.value, channel: channel.value, locale: locale.value.trim() || "en" };
    for (const [name, value] of Object.entries(content())) if (value !== null) body[name] = value;
    return body;
  }

  function showErrors(error) {
    const byPart = {};
    const rest = [];
    for (const f of error.fields || []) {
      const part = f.loc.split(".")[0];
      if (editors[part]) (byPart[part] ||= []).push(f);
      else if (part === "payload") (byPart.payload ||= []).push({ ...f, msg: `${f.loc}: ${f.msg}` });
      else rest.push(f);
    }
    for (const [name, editorOf] of Object.entries(editors)) editorOf.setErrors(byPart[name] || []);
    payload.setErrors(byPart.payload || []);
    clear(general, rest.length || !(error.fields || []).length ? errorBox({ explanation: error.explanation || error.message, fields: rest }) : null);
  }

  function clearErrors() {
    for (const editorOf of Object.values(editors)) editorOf.setErrors([]);
    payload.setErrors([]);
    clear(general);
  }

  locale.addEventListener("input", () => edited());
  eventType.addEventListener("change", () => {
    showSample();
    edited();
  });
  channel.addEventListener("change", () => {
    setParts(Object.fromEntries(Object.entries(editors).map(([name, e]) => [name, e.value])));
    edited();
  });
  payload.area.addEventListener("input", () => edited());
  showSample();
  setParts(current || { subject: "", body_text: "", title: "", body: "" });

  const element = h(
    "form",
    { class: "editor", novalidate: true },
    h("div", { class: "row" }, field("Event type", eventType), field("Channel", channel), field("Locale", locale, "en, de, pt-BR…")),
    variables,
    parts,
    payload.element,
    general,
    h("div", { class: "actions" }, save),
    outcome,
  );
  return {
    element,
    save,
    payload,
    content,
    draft,
    setParts,
    showErrors,
    clearErrors,
    /** What saving (or loading a version) came to, under the button. */
    say: (...nodes) => clear(outcome, ...nodes),
    onEdit: (listener) => {
      edited = listener;
    },
  };
}

/** The preview: the service renders the form's draft with its payload, now or as it is typed (debounced). */
function templatePreview(form, signal) {
  const status = h("p", { class: "preview-state", role: "status", "aria-live": "polite" }, "…");
  const rendered = h("div", { class: "preview" });
  const remote = { images: false }; // remote images in the preview: once asked for, kept as the preview follows typing
  const fresh = replacing(signal);

  async function now() {
    const body = form.draft();
    try {
      const text = form.payload.value.trim();
      if (text) body.payload = JSON.parse(text);
    } catch (error) {
      form.payload.setErrors([{ loc: "payload", msg: `not JSON: ${error.message}` }]);
      status.textContent = "The payload is not JSON";
      return;
    }
    const mine = fresh();
    status.textContent = "Rendering…";
    rendered.classList.add("stale");
    try {
      const answer = await post("templates:preview", body, { signal: mine });
      form.clearErrors();
      clear(rendered, message(answer, remote));
      rendered.classList.remove("stale");
      status.textContent = `Rendered at ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error.name === "AbortError") return;
      form.showErrors(error);
      const n = (error.fields || []).length;
      status.textContent = error instanceof ApiError && error.status === 422 ? `${n} problem${n === 1 ? "" : "s"}: not rendered` : "Not rendered";
    }
  }

  const elements = [
    h("p", { class: "muted" }, "Rendered by the service as you type, with the payload on the left and a sample recipient."),
    status,
    rendered,
  ];
  return { elements, now, soon: debounce(now, 350, signal), say: (text) => (status.textContent = text) };
}

/** Saving: a new template is created and opened; a saved one gets a new version, which `saved(answer)` is told of. */
function saveTemplate(form, { templateId, navigate, saved }) {
  form.element.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.say();
    try {
      const answer = await busy(form.save, "Saving…", () =>
        templateId ? put(`templates/${seg(templateId)}`, form.content()) : post("templates", form.draft()),
      );
      if (!templateId) {
        navigate(`#/templates/${seg(answer.template_id)}`);
        return;
      }
      form.clearErrors();
      form.say(info(`Saved as version ${answer.version}.`));
      saved(answer);
    } catch (error) {
      form.showErrors(error);
      form.say(errorBox(error));
    }
  });
}

/** A saved template's versions, newest first, each with a button that hands it to `load`. */
function templateVersions(templateId, signal, load) {
  const element = h("div");
  const loadButton = (t) =>
    h(
      "button",
      { type: "button", class: "secondary", "aria-label": `Load version ${t.version} into the editor`, on: { click: () => load(t) } },
      "Load",
    );
  async function show() {
    try {
      const answer = await get(`templates/${seg(templateId)}/versions`, { signal });
      const columns = [
        { label: "Version", cell: (t) => `v${t.version}`, class: "num" },
        { label: "Saved", cell: (t) => time(t.created_at) },
        { label: "", cell: loadButton },
      ];
      clear(element, localPager(answer.items, (page) => table(columns, page), 10));
    } catch (error) {
      if (error.name !== "AbortError") clear(element, errorBox(error));
    }
  }
  return { element, show };
}

/** #/templates/{template_id}[?version=N] and #/templates/new */
export async function editor({ view, params: [templateId], query, signal, navigate }) {
  const types = await eventTypes();
  let current = null;
  if (templateId) {
    try {
      current = await get(`templates/${seg(templateId)}`, { query: { version: query.get("version") }, signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      mount(view, pageTitle(view, `Template ${templateId}`), errorBox(error), link("#/templates", "All templates"));
      return;
    }
  }
  const form = templateForm(types, current, query);
  const preview = templatePreview(form, signal);
  form.onEdit(preview.soon);
  const versions = templateVersions(templateId, signal, (version) => {
    form.setParts(version);
    form.say(info(`Loaded version ${version.version}; saving it makes it the newest version.`));
    preview.now();
  });
  const heading = h("span", {}, current ? `Template ${current.template_id} · v${current.version}` : "New template");
  saveTemplate(form, {
    templateId,
    navigate,
    saved: (answer) => {
      clear(heading, `Template ${answer.template_id} · v${answer.version}`);
      versions.show();
    },
  });

  const title = pageTitle(view, current ? `Template ${current.template_id}` : "New template");
  clear(title.querySelector("h1"), heading);
  mount(
    view,
    title,
    h("p", {}, link("#/templates", "← All templates")),
    h("div", { class: "columns editor-columns" }, section("Edit", form.element), section("Preview", preview.elements)),
    current ? section("Versions", versions.element) : null,
  );
  if (current) {
    preview.now();
    versions.show();
  } else {
    preview.say("Start typing: the preview follows as you type.");
  }
}
