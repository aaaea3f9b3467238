// Small DOM helpers. Everything the API returns is put in the page as text (never as HTML), so a template, an
// error or a payload can never run script in the console.

/** An element: h("a", {href: "#/", class: "x", on: {click}}, "text", child...). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "text") {
      element.textContent = value;
    } else if (name === "value") {
      element.value = value;
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Append children to an element, skipping null, undefined and false (DOM append would print them). */
export function mount(element, ...children) {
  append(element, children);
  return element;
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let ids = 0;
/** A unique id for labelling inputs. */
export const uid = (prefix = "f") => `${prefix}-${++ids}`;

/** A labelled control: field("Cron", h("input", {...}), "hint"). The control gets an id if it has none. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  const hintId = hint ? `${control.id}-hint` : undefined;
  if (hintId) {
    // Keep what the control is already described by (its error line, say): the hint comes after it.
    const described = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter((id) => id && id !== hintId);
    control.setAttribute("aria-describedby", [...described, hintId].join(" "));
  }
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null,
  );
}

const DAY_AND_TIME = { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit" };
const LOCAL = new Intl.DateTimeFormat(undefined, { ...DAY_AND_TIME, second: "2-digit" });

/** Times in `zone` (an IANA name), with the weekday, to the minute; null for a zone the browser does not know. */
export function zoneFormat(zone) {
  try {
    return new Intl.DateTimeFormat(undefined, { ...DAY_AND_TIME, timeZone: zone, weekday: "short" });
  } catch {
    return null;
  }
}

/** "2026-11-25 20:04:05 UTC" */
export function utcText(date) {
  return `${date.toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

/** A time in the browser's zone, with the UTC time on hover (and in the datetime attribute). */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  return h("time", { datetime: date.toISOString(), title: utcText(date) }, LOCAL.format(date));
}

/** The same as text, for a title: "25 Nov 2026, 21:04:05 (2026-11-25 20:04:05 UTC)". */
export function timeText(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return String(iso ?? "");
  return `${LOCAL.format(date)} (${utcText(date)})`;
}

/** The browser's time zone, said once per page where times are shown. */
export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

const STATUS_CLASS = {
  SENT: "ok",
  DELIVERED: "ok",
  ACTIVE: "ok",
  ACCEPTED: "info",
  PROCESSING: "info",
  SENDING: "info",
  SCHEDULED: "info",
  RETRYING: "warn",
  PAUSED: "warn",
  SKIPPED: "muted",
  DIGESTED: "info",
  EXPIRED: "muted",
  INACTIVE: "muted",
  FAILED: "bad",
  BOUNCED: "bad",
  COMPLAINED: "bad",
};

export function badge(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] || ""}` }, status || "—");
}

/** counts {"SENT": 3, ...} as badges with numbers. */
export function counts(values) {
  const entries = Object.entries(values || {}).filter(([, n]) => n);
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "counts" },
    entries.map(([name, n]) => h("span", { class: `count ${STATUS_CLASS[name] || ""}` }, `${name} ${n}`)),
  );
}

/** A table: columns [{label, cell: row => node, class?}], an empty message. */
export function table(columns, rows, { empty = "Nothing here.", caption } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))),
    ),
  );
}

/** An API error as a person reads it: the message, and each field error with its line. */
export function errorBox(error) {
  if (!error) return null;
  const message = error.explanation || error.message || String(error);
  const fields = error.fields || [];
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, message),
    fields.length
      ? h(
          "ul",
          {},
          fields.map((f) => h("li", {}, h("code", {}, f.loc), f.line ? ` line ${f.line}` : "", `: ${f.msg}`)),
        )
      : null,
  );
}

export function info(text) {
  return h("p", { class: "info", role: "status" }, text);
}

/** Run `action` with `button` disabled and showing `busyText`; its error goes to `onError`. */
export async function busy(button, busyText, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = busyText;
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

/** `fn` called `ms` after the last of a run of calls; `signal` (the page's), once aborted, cancels a call due. */
export function debounce(fn, ms, signal) {
  let timer;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  if (signal) signal.addEventListener("abort", () => debounced.cancel());
  return debounced;
}

/** A link to a page of the console. */
export function link(hash, text) {
  return h("a", { href: hash }, text);
}

/**
 * A list paged with the API's cursors. `load(cursor)` resolves to {items, next_cursor}; `render(items)` to a node.
 * Keeps the cursors of the pages seen, so Previous goes back without the API having backward cursors.
 */
export function cursorPager({ load, render, signal }) {
  const body = h("div", { class: "pager-body", "aria-live": "polite" });
  const where = h("span", { class: "muted" });
  const previous = h("button", { type: "button", class: "secondary" }, "Previous page");
  const next = h("button", { type: "button", class: "secondary" }, "Next page");
  const cursors = [null];
  let index = 0;
  let nextCursor = null;

  async function show(at) {
    body.setAttribute("aria-busy", "true");
    try {
      const page = await load(cursors[at]);
      if (signal && signal.aborted) return;
      index = at;
      nextCursor = page.next_cursor || null;
      if (nextCursor) cursors[index + 1] = nextCursor;
      clear(body, render(page.items, page));
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(body, errorBox(error));
    } finally {
      body.removeAttribute("aria-busy");
      previous.disabled = index === 0;
      next.disabled = !nextCursor;
      where.textContent = `Page ${index + 1}`;
    }
  }

  previous.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  const element = h("div", { class: "pager" }, body, h("div", { class: "pager-nav" }, previous, where, next));
  return { element, reload: () => show(index), first: () => show(0) };
}

/** Paging of a list the API answers whole (templates, segments, a dead-letter sample): `size` rows a page. */
export function localPager(rows, render, size = 25) {
  const body = h("div", { class: "pager-body" });
  const where = h("span", { class: "muted" });
  const previous = h("button", { type: "button", class: "secondary" }, "Previous page");
  const next = h("button", { type: "button", class: "secondary" }, "Next page");
  const pages = Math.max(1, Math.ceil(rows.length / size));
  let index = 0;
  function show(at) {
    index = Math.min(Math.max(at, 0), pages - 1);
    clear(body, render(rows.slice(index * size, (index + 1) * size)));
    previous.disabled = index === 0;
    next.disabled = index >= pages - 1;
    where.textContent = `Page ${index + 1} of ${pages} · ${rows.length} in all`;
  }
  previous.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  show(0);
  const nav = pages > 1 ? h("div", { class: "pager-nav" }, previous, where, next) : h("p", { class: "muted" }, where);
  return h("div", { class: "pager" }, body, nav);
}

/** A section with a heading. */
export function section(title, ...children) {
  const id = uid("s");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** The page's heading and document title. */
export function pageTitle(view, title, ...extra) {
  document.title = `${title} · Notification console`;
  return h("div", { class: "page-head" }, h("h1", {}, title), ...extra);
}

/** Pretty JSON, or the text as it is. */
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** Key/value pairs as a definition list; values may be nodes. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value ?? h("span", { class: "muted" }, "—"))]),
  );
}

/**
 * A rendered message: subject, text and HTML (an email), title and body (push, in-app). The HTML is shown as its
 * source, and in frame.html: a frame sandboxed to scripts only (an opaque origin, so nothing of the console's is
 * within its reach), whose own policy lets the email's styles apply and runs no script but frame.js, which takes
 * the HTML by postMessage once the frame has loaded.
 *
 * Remote images stay out until the operator asks: frame.html's policy lets in data: images only, since fetching a
 * remote one (a tracking pixel, often) tells its host the message was opened, when and from where. "Load remote
 * images" shows the HTML again in frame-images.html, the same frame whose policy also lets HTTPS images in.
 * ``remote`` holds that choice ({ images: true } once made), so a view that renders again (a template's preview as
 * it is typed) keeps it.
 */
export function message(rendered, remote = { images: false }) {
  const parts = [];
  if (rendered.subject !== undefined) parts.push(["Subject", h("p", { class: "subject" }, rendered.subject)]);
  if (rendered.title !== undefined) parts.push(["Title", h("p", { class: "subject" }, rendered.title)]);
  if (rendered.body !== undefined) parts.push(["Body", h("pre", { class: "text" }, rendered.body)]);
  if (rendered.text !== undefined) parts.push(["Text", h("pre", { class: "text" }, rendered.text)]);
  if (rendered.html !== undefined) {
    const frame = h("iframe", {
      class: "html",
      title: "The HTML part, rendered",
      sandbox: "allow-scripts",
      referrerpolicy: "no-referrer",
    });
    const show = (src) => {
      // The frame's origin is opaque, so no target origin but "*" reaches it; the window is this frame's own.
      frame.addEventListener("load", () => frame.contentWindow.postMessage({ html: rendered.html }, "*"), { once: true });
      frame.src = src;
    };
    const load = h(
      "button",
      {
        type: "button",
        class: "secondary",
        on: {
          click: () => {
            remote.images = true;
            show("frame-images.html");
            note.remove();
          },
        },
      },
      "Load remote images",
    );
    const note = h(
      "p",
      { class: "muted images" },
      "Remote images are not loaded: fetching them would tell their host that this message was opened, when and from where. ",
      load,
    );
    show(remote.images ? "frame-images.html" : "frame.html");
    parts.push(["HTML", [remote.images ? null : note, frame]]);
    parts.push(["HTML source", h("details", {}, h("summary", {}, "Show the source"), h("pre", { class: "text" }, rendered.html))]);
  }
  return h(
    "div",
    { class: "message" },
    parts.map(([name, node]) => h("div", { class: "part" }, h("h3", {}, name), node)),
  );
}
