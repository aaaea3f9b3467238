// #/templates : every template by event type × channel × locale.
// #/templates/{id} and #/templates/new : the editor, with a server-side preview as you type (debounced) and the
// validation errors at their lines; saving makes a new version.

import { ApiError, get, listEventTypes, post, put, seg } from "./api.js";
import {
  busy,
  clear,
  debounce,
  enc,
  errorBox,
  field,
  h,
  info,
  link,
  localPager,
  message,
  mount,
  pageTitle,
  section,
  table,
  time,
  timeText,
  uid,
} from "./ui.js";

const CHANNELS = ["email", "push", "websocket"];
const PARTS = { email: ["subject", "body_text", "body_html"], push: ["title", "body"], websocket: ["title", "body"] };
const LABELS = { subject: "Subject", body_text: "Text body", body_html: "HTML body", title: "Title", body: "Body" };
const ROWS = { subject: 2, title: 2, body_text: 9, body_html: 9, body: 6 };

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
  const eventType = h("select", { name: "event_type" }, h("option", { value: "" }, "any"), types.map((t) => h("option", { value: t.event_type }, t.event_type)));
  const channel = h("select", { name: "channel" }, h("option", { value: "" }, "any"), CHANNELS.map((c) => h("option", { value: c }, c)));
  eventType.value = query.get("event_type") || "";
  channel.value = query.get("channel") || "";
  const filter = () => {
    const q = new URLSearchParams();
    if (eventType.value) q.set("event_type", eventType.value);
    if (channel.value) q.set("channel", channel.value);
    navigate(`#/templates${q.toString() ? `?${q}` : ""}`);
  };
  eventType.addEventListener("change", filter);
  channel.addEventListener("change", filter);
  const body = h("div");
  mount(view, 
    pageTitle(view, "Templates", h("a", { href: "#/templates/new", class: "button" }, "New template")),
    h("p", { class: "muted" }, "The newest version of each template: an event type's row, a channel's column, a locale each. Open one to edit it and see its versions."),
    h("form", { class: "filters" }, field("Event type", eventType), field("Channel", channel)),
    body,
  );
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
      const add = h("a", { href: `#/templates/new?event_type=${enc(name)}&channel=${ch}`, class: "add", "aria-label": `New ${name} ${ch} template` }, "+ add");
      return h(
        "div",
        { class: "chips" },
        found.map((t) =>
          h("a", { href: `#/templates/${enc(t.template_id)}`, class: "chip", "aria-label": `${t.template_id} (v${t.version})`, title: `v${t.version}, saved ${timeText(t.created_at)}` }, t.locale, h("span", { class: "muted" }, ` v${t.version}`)),
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

/** A textarea with line numbers; the lines an error names are marked, and listed with a way to go to them. */
function codeEditor(name, label, value, rows) {
  const area = h("textarea", { name, id: uid(name), rows, spellcheck: "false", wrap: "off", class: "code-input" });
  area.value = value || "";
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const errorsId = `${area.id}-errors`;
  const problems = h("ul", { class: "part-errors", id: errorsId });
  area.setAttribute("aria-describedby", errorsId);
  let bad = new Map();

  function paint() {
    const count = area.value.split("\n").length;
    clear(
      gutter,
      Array.from({ length: count }, (_, i) => {
        const line = i + 1;
        return h("span", { class: bad.has(line) ? "bad" : "", title: bad.get(line) }, String(line));
      }),
    );
    gutter.scrollTop = area.scrollTop;
  }

  function goTo(line) {
    const lines = area.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, text) => n + text.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const height = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 3) * height);
  }

  function setErrors(errors) {
    bad = new Map(errors.filter((e) => e.line).map((e) => [e.line, e.msg]));
    area.setAttribute("aria-invalid", errors.length ? "true" : "false");
    clear(
      problems,
      errors.map((e) =>
        h(
          "li",
          {},
          e.line
            ? h("button", { type: "button", class: "linkish", on: { click: () => goTo(e.line) } }, `Line ${e.line}`)
            : null,
          e.line ? ": " : "",
          e.line ? e.msg.replace(/^line \d+: /, "") : e.msg,
        ),
      ),
    );
    paint();
  }

  area.addEventListener("input", paint);
  area.addEventListener("scroll", () => {
    gutter.scrollTop = area.scrollTop;
  });
  paint();
  const element = h(
    "div",
    { class: "field code-field" },
    h("label", { for: area.id }, label),
    h("div", { class: "code" }, gutter, area),
    problems,
  );
  return { element, area, setErrors, get value() { return area.value; }, set value(v) { area.value = v || ""; paint(); } };
}

/** #/templates/{template_id}[?version=N] and #/templates/new */
export async function editor({ view, params: [templateId], query, signal, navigate }) {
  const types = await eventTypes();
  const isNew = !templateId;
  let current = null;
  if (!isNew) {
    try {
      current = await get(`templates/${seg(templateId)}`, { query: { version: query.get("version") }, signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      mount(view, pageTitle(view, `Template ${templateId}`), errorBox(error), link("#/templates", "All templates"));
      return;
    }
  }

  const eventType = h("select", { name: "event_type", disabled: !isNew }, types.map((t) => h("option", { value: t.event_type }, t.event_type)));
  const channel = h("select", { name: "channel", disabled: !isNew }, CHANNELS.map((c) => h("option", { value: c }, c)));
  const locale = h("input", { name: "locale", value: "en", disabled: !isNew, spellcheck: "false", autocomplete: "off", size: 8 });
  if (current) {
    if (!types.some((t) => t.event_type === current.event_type)) eventType.append(h("option", { value: current.event_type }, current.event_type));
    eventType.value = current.event_type;
    channel.value = current.channel;
    locale.value = current.locale;
  } else {
    eventType.value = query.get("event_type") || (types[0] && types[0].event_type) || "";
    channel.value = query.get("channel") || "email";
  }
  const payload = codeEditor("payload", "Payload to preview with (JSON)", "", 6);
  const variables = h("p", { class: "muted" });
  const parts = h("div");
  const general = h("div");
  const status = h("p", { class: "preview-state", role: "status", "aria-live": "polite" }, "…");
  const rendered = h("div", { class: "preview" });
  const remote = { images: false }; // remote images in the preview: once asked for, kept as the preview follows typing
  const save = h("button", { type: "submit" }, isNew ? "Create template" : "Save as a new version");
  const saved = h("div", { "aria-live": "polite" });
  const versions = h("div");
  let editors = {};
  let sample = "";

  function showSample() {
    const spec = types.find((t) => t.event_type === eventType.value);
    const next = spec ? JSON.stringify(spec.sample_payload, null, 2) : "{}";
    if (!payload.value.trim() || payload.value === sample) payload.value = next;
    sample = next;
    clear(
      variables,
      "Variables: ",
      h("code", {}, "user.id, user.email, user.first_name, user.last_name, user.locale"),
      ", ",
      h("code", {}, "event.event_id, event.unsubscribe_url"),
      spec ? [", and the payload's ", h("code", {}, [...spec.required, ...spec.optional].join(", ")), spec.optional.length ? ` (optional: ${spec.optional.join(", ")})` : ""] : "",
    );
  }

  function buildParts(values) {
    editors = {};
    clear(
      parts,
      PARTS[channel.value].map((name) => {
        const editorOf = codeEditor(name, LABELS[name], values[name], ROWS[name]);
        editorOf.area.addEventListener("input", schedule);
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

  let inflight = null;
  async function preview() {
    const body = draft();
    try {
      const text = payload.value.trim();
      if (text) body.payload = JSON.parse(text);
    } catch (error) {
      payload.setErrors([{ loc: "payload", msg: `not JSON: ${error.message}` }]);
      status.textContent = "The payload is not JSON";
      return;
    }
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const mine = inflight;
    signal.addEventListener("abort", () => mine.abort());
    status.textContent = "Rendering…";
    rendered.classList.add("stale");
    try {
      const answer = await post("templates:preview", body, { signal: mine.signal });
      clearErrors();
      clear(rendered, message(answer, remote));
      rendered.classList.remove("stale");
      status.textContent = `Rendered at ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error.name === "AbortError") return;
      showErrors(error);
      const n = (error.fields || []).length;
      status.textContent = error instanceof ApiError && error.status === 422 ? `${n} problem${n === 1 ? "" : "s"}: not rendered` : "Not rendered";
    }
  }
  const schedule = debounce(preview, 350);
  signal.addEventListener("abort", () => schedule.cancel());

  async function loadVersions() {
    if (isNew) return;
    try {
      const answer = await get(`templates/${seg(templateId)}/versions`, { signal });
      clear(
        versions,
        localPager(
          answer.items,
          (page) =>
            table(
              [
                { label: "Version", cell: (t) => `v${t.version}`, class: "num" },
                { label: "Saved", cell: (t) => time(t.created_at) },
                {
                  label: "",
                  cell: (t) =>
                    h(
                      "button",
                      {
                        type: "button",
                        class: "secondary",
                        "aria-label": `Load version ${t.version} into the editor`,
                        on: {
                          click: () => {
                            buildParts(t);
                            clear(saved, info(`Loaded version ${t.version}; saving it makes it the newest version.`));
                            preview();
                          },
                        },
                      },
                      "Load",
                    ),
                },
              ],
              page,
            ),
          10,
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") clear(versions, errorBox(error));
    }
  }

  const form = h(
    "form",
    { class: "editor", novalidate: true },
    h("div", { class: "row" }, field("Event type", eventType), field("Channel", channel), field("Locale", locale, "en, de, pt-BR…")),
    variables,
    parts,
    payload.element,
    general,
    h("div", { class: "actions" }, save),
    saved,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(saved);
    try {
      const answer = await busy(save, "Saving…", () =>
        isNew ? post("templates", draft()) : put(`templates/${seg(templateId)}`, content()),
      );
      if (isNew) {
        navigate(`#/templates/${enc(answer.template_id)}`);
        return;
      }
      current = answer;
      clearErrors();
      clear(saved, info(`Saved as version ${answer.version}.`));
      clear(heading, `Template ${answer.template_id} · v${answer.version}`);
      loadVersions();
    } catch (error) {
      showErrors(error);
      clear(saved, errorBox(error));
    }
  });
  locale.addEventListener("input", schedule);
  eventType.addEventListener("change", () => {
    showSample();
    schedule();
  });
  channel.addEventListener("change", () => {
    buildParts(Object.fromEntries(Object.entries(editors).map(([name, e]) => [name, e.value])));
    schedule();
  });
  payload.area.addEventListener("input", schedule);

  const heading = h("span", {}, isNew ? "New template" : `Template ${current.template_id} · v${current.version}`);
  const title = pageTitle(view, isNew ? "New template" : `Template ${current.template_id}`);
  clear(title.querySelector("h1"), heading);
  mount(view, 
    title,
    h("p", {}, link("#/templates", "← All templates")),
    h(
      "div",
      { class: "columns editor-columns" },
      section("Edit", form),
      section("Preview", h("p", { class: "muted" }, "Rendered by the service as you type, with the payload on the left and a sample recipient."), status, rendered),
    ),
    isNew ? null : section("Versions", versions),
  );
  showSample();
  buildParts(current || { subject: "", body_text: "", title: "", body: "" });
  if (current) preview();
  else status.textContent = "Start typing: the preview follows as you type.";
  loadVersions();
}
