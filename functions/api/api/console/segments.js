// #/segments : static segments with their size; create one.
// #/segments/{id} : its size; add or remove user ids from a CSV file (10,000 a call, with progress).

import { ApiError, del, get, post, seg } from "./api.js";
import { browserZone, busy, clear, errorBox, facts, field, h, info, link, localPager, pageTitle, section, table, time, mount } from "./ui.js";

const CHUNK = 10_000; // the API's limit of user ids per call

/** #/segments */
export async function list({ view, signal, navigate }) {
  const body = h("div");
  const id = h("input", { name: "segment_id", required: true, pattern: "[A-Za-z0-9_.:\\-]+", maxlength: "128", autocomplete: "off", spellcheck: "false" });
  const name = h("input", { name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const create = h("button", { type: "submit" }, "Create segment");
  const outcome = h("div");
  const form = h("form", { class: "inline-form" }, field("Segment id", id, "letters, digits and _ . : - (not . or .. alone)"), field("Name", name), create);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    try {
      const created = await busy(create, "Creating…", () => post("segments", { segment_id: id.value.trim(), name: name.value.trim() }));
      navigate(`#/segments/${seg(created.segment_id)}`);
    } catch (error) {
      clear(outcome, errorBox(error));
    }
  });
  mount(view,
    pageTitle(view, "Segments"),
    h(
      "p",
      { class: "muted" },
      "Static segments: lists of user ids kept by this service. Other segment ids (such as all) are the Auth " +
        `service's. Times in ${browserZone()}.`,
    ),
    body,
    section("New segment", form, outcome),
  );
  let items;
  try {
    items = (await get("segments", { signal })).items;
  } catch (error) {
    if (error.name !== "AbortError") clear(body, errorBox(error));
    return;
  }
  items.sort((a, b) => a.segment_id.localeCompare(b.segment_id));
  const size = (segment) => {
    const cell = h("span", { class: "muted" }, "…");
    get(`segments/${seg(segment.segment_id)}`, { signal })
      .then((found) => clear(cell, String(found.users)).classList.remove("muted"))
      .catch((error) => clear(cell, error.name === "AbortError" ? "" : "?"));
    return cell;
  };
  clear(
    body,
    localPager(items, (page) =>
      table(
        [
          { label: "Segment", cell: (s) => link(`#/segments/${seg(s.segment_id)}`, s.segment_id) },
          { label: "Name", cell: (s) => s.name },
          { label: "Users", cell: size, class: "num" },
          { label: "Created", cell: (s) => time(s.created_at) },
        ],
        page,
        { empty: "No static segments yet." },
      ),
    ),
  );
}

/**
 * The first field of each record of CSV text, as RFC 4180 reads it: a quoted field may hold separators, line
 * breaks and doubled quotes (""); a comma, semicolon or tab separates fields, CRLF or LF records.
 */
export function firstFields(text) {
  const firsts = [];
  let first = "";
  let column = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') {
      if (column === 0) first += c;
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (quoted) {
      if (column === 0) first += c;
    } else if (c === "," || c === ";" || c === "\t") {
      column++;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      firsts.push(first);
      first = "";
      column = 0;
    } else if (column === 0) {
      first += c;
    }
  }
  firsts.push(first);
  return firsts;
}

/** User ids from CSV text: the first column of each row, unquoted, blank rows and a user_id header skipped. */
export function parseCsv(text) {
  const ids = [];
  const seen = new Set();
  for (const [index, raw] of firstFields(text).entries()) {
    const cell = raw.trim();
    if (!cell || (index === 0 && /^(user_?id|id|user)$/i.test(cell))) continue;
    if (!seen.has(cell)) {
      seen.add(cell);
      ids.push(cell);
    }
  }
  return ids;
}

/** #/segments/{segment_id} */
export async function detail({ view, params: [segmentId], signal, navigate }) {
  const head = h("div");
  const file = h("input", { type: "file", name: "csv", accept: ".csv,text/csv,text/plain" });
  const add = h("button", { type: "button" }, "Add these users");
  const remove = h("button", { type: "button", class: "secondary" }, "Remove these users");
  const drop = h("button", { type: "button", class: "danger" }, "Delete segment");
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const progressText = h("span", { class: "muted", "aria-live": "polite" });
  const parsed = h("p", { class: "muted", "aria-live": "polite" }, "Choose a CSV file: one user id per row (the first column; a user_id header is skipped).");
  const outcome = h("div", { "aria-live": "polite" });
  let ids = [];

  mount(view,
    pageTitle(view, `Segment ${segmentId}`),
    h("p", {}, link("#/segments", "← All segments")),
    head,
    section(
      "Upload user ids",
      h("form", { class: "inline-form" }, field("CSV file of user ids", file)),
      parsed,
      h("div", { class: "actions" }, add, remove, progress, progressText),
      outcome,
    ),
    h("div", { class: "actions" }, drop),
  );

  async function load() {
    try {
      const found = await get(`segments/${seg(segmentId)}`, { signal });
      clear(head, facts([["Name", found.name], ["Users", h("strong", { id: "segment-size" }, String(found.users))], ["Created", time(found.created_at)]]));
      return found;
    } catch (error) {
      if (error.name !== "AbortError") clear(head, errorBox(error));
      return null;
    }
  }

  file.addEventListener("change", async () => {
    clear(outcome);
    const chosen = file.files && file.files[0];
    ids = chosen ? parseCsv(await chosen.text()) : [];
    parsed.textContent = chosen ? `${ids.length} distinct user id${ids.length === 1 ? "" : "s"} in ${chosen.name}.` : "No file chosen.";
  });

  async function upload(button, method, busyText, verb) {
    if (!ids.length) {
      clear(outcome, errorBox(new Error("Choose a CSV file with at least one user id first.")));
      return;
    }
    clear(outcome);
    progress.hidden = false;
    progress.max = ids.length;
    progress.value = 0;
    let last = null;
    try {
      await busy(button, busyText, async () => {
        for (let start = 0; start < ids.length; start += CHUNK) {
          const chunk = ids.slice(start, start + CHUNK);
          last = await (method === "POST"
            ? post(`segments/${seg(segmentId)}/users`, { user_ids: chunk })
            : del(`segments/${seg(segmentId)}/users`, { body: { user_ids: chunk } }));
          progress.value = start + chunk.length;
          progressText.textContent = `${start + chunk.length} of ${ids.length}`;
        }
      });
      clear(outcome, info(`${verb}: ${ids.length} user ids. The segment now has ${last.users} users.`));
    } catch (error) {
      const fields = error instanceof ApiError ? error.fields : [];
      clear(outcome, errorBox(error), fields.length ? h("p", { class: "muted" }, "Nothing after the failing call was sent; the calls before it stand.") : null);
    } finally {
      progress.hidden = true;
      load();
    }
  }

  add.addEventListener("click", () => upload(add, "POST", "Adding…", "Added"));
  remove.addEventListener("click", () => upload(remove, "DELETE", "Removing…", "Removed"));
  drop.addEventListener("click", async () => {
    if (!window.confirm(`Delete the segment ${segmentId}? Campaigns sending to it will find no users.`)) return;
    try {
      await busy(drop, "Deleting…", () => del(`segments/${seg(segmentId)}`));
      navigate("#/segments");
    } catch (error) {
      clear(outcome, errorBox(error));
    }
  });
  await load();
}
