// #/campaigns : campaigns with their status, next and last run (paged with the API's cursor).
// #/campaigns/new and #/campaigns/{id} : create or edit, with the cron's next five fire times shown as you type
// (in the campaign's time zone and yours); pause, resume; runs with their recipients and status counts.

import { ApiError, del, get, listEventTypes, post, put, seg } from "./api.js";
import {
  badge,
  browserZone,
  busy,
  clear,
  counts,
  cursorPager,
  debounce,
  enc,
  errorBox,
  facts,
  field,
  h,
  info,
  link,
  pageTitle,
  section,
  table,
  time,
  uid,
  utcText,
  mount,
} from "./ui.js";

const CHANNELS = ["email", "push", "websocket"];

/** #/campaigns */
export async function list({ view, signal }) {
  const pager = cursorPager({
    signal,
    load: (cursor) => get("campaigns", { query: { limit: 20, cursor }, signal }),
    render: (items) =>
      table(
        [
          { label: "Campaign", cell: (c) => link(`#/campaigns/${enc(c.campaign_id)}`, c.name) },
          { label: "Status", cell: (c) => badge(c.status) },
          { label: "Schedule", cell: (c) => [h("code", {}, c.cron), ` ${c.timezone}`] },
          { label: "Next run", cell: (c) => time(c.next_run_at) },
          { label: "Last run", cell: (c) => time(c.last_triggered_at) },
          { label: "Runs", cell: (c) => `${c.runs_count}${c.max_runs ? ` of ${c.max_runs}` : ""}`, class: "num" },
          { label: "Segment", cell: (c) => link(`#/segments/${enc(c.segment_id)}`, c.segment_id) },
          { label: "Event type", cell: (c) => c.event_type },
        ],
        items,
        { empty: "No campaigns yet." },
      ),
  });
  mount(view, 
    pageTitle(view, "Campaigns", h("a", { href: "#/campaigns/new", class: "button" }, "New campaign")),
    h("p", { class: "muted" }, `Times in ${browserZone()}; hover one for UTC.`),
    pager.element,
  );
  await pager.first();
}

function zoneFormat(zone) {
  try {
    return new Intl.DateTimeFormat(undefined, {
      timeZone: zone,
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
    });
  } catch {
    return null;
  }
}

/** The next fire times, as the API computed them: in the campaign's zone and in the browser's (UTC on hover). */
function fireTimes(answer) {
  const inZone = zoneFormat(answer.timezone);
  return h(
    "table",
    { class: "fire-times fire-table" },
    h("caption", {}, "Next five fire times"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, `In ${answer.timezone}`), h("th", { scope: "col" }, `In your zone (${browserZone()})`))),
    h(
      "tbody",
      {},
      answer.next_runs.map((utc, index) => {
        const date = new Date(utc);
        return h(
          "tr",
          {},
          h("td", { class: "num" }, String(index + 1)),
          h("td", {}, h("time", { datetime: date.toISOString(), title: utcText(date) }, inZone ? inZone.format(date) : utc)),
          h("td", {}, time(utc)),
        );
      }),
    ),
  );
}

/** #/campaigns/new and #/campaigns/{campaign_id} */
export async function editor({ view, params: [campaignId], signal, navigate }) {
  const isNew = !campaignId;
  let types = [];
  let typesProblem = null;
  try {
    types = await listEventTypes();
  } catch (error) {
    // Without them the event type cannot be chosen nor its sample shown: say so, as the API said it.
    typesProblem = errorBox({ explanation: `The event types could not be loaded: ${error.explanation || error.message}` });
  }
  let current = null;
  if (!isNew) {
    try {
      current = await get(`campaigns/${seg(campaignId)}`, { signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      mount(view, pageTitle(view, "Campaign"), errorBox(error), link("#/campaigns", "All campaigns"));
      return;
    }
  }
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: uid("zones") }, ["UTC", ...zones].map((z) => h("option", { value: z })));
  const segmentList = h("datalist", { id: uid("segments") }, h("option", { value: "all" }));

  const name = h("input", { name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const cron = h("input", { name: "cron", required: true, spellcheck: "false", autocomplete: "off", class: "mono" });
  const timezone = h("input", { name: "timezone", required: true, list: zoneList.id, autocomplete: "off", spellcheck: "false" });
  const segment = h("input", { name: "segment_id", required: true, list: segmentList.id, autocomplete: "off", spellcheck: "false" });
  const eventType = h("select", { name: "event_type" }, types.map((t) => h("option", { value: t.event_type }, t.event_type)));
  const payload = h("textarea", { name: "payload", rows: 7, spellcheck: "false", class: "code-input" });
  const channelBoxes = CHANNELS.map((c) => h("input", { type: "checkbox", name: "channels", value: c, id: uid(c) }));
  const priority = h("select", { name: "priority" }, ["", "high", "normal", "low"].map((p) => h("option", { value: p }, p || "the event type's")));
  const maxRuns = h("input", { name: "max_runs", type: "number", min: "1", step: "1", inputmode: "numeric" });
  const cronError = h("p", { class: "field-error", id: uid("cron-err") });
  const zoneError = h("p", { class: "field-error", id: uid("zone-err") });
  cron.setAttribute("aria-describedby", cronError.id);
  timezone.setAttribute("aria-describedby", zoneError.id);
  const schedule = h("div", { class: "schedule", "aria-live": "polite" });
  const errors = h("div");
  const save = h("button", { type: "submit" }, isNew ? "Create campaign" : "Save changes");
  let sample = "";

  const c = current || { name: "", cron: "0 9 * * 1", timezone: browserZone(), segment_id: "all", payload: null };
  name.value = c.name;
  cron.value = c.cron;
  timezone.value = c.timezone;
  segment.value = c.segment_id;
  if (current) {
    if (!types.some((t) => t.event_type === current.event_type)) eventType.append(h("option", { value: current.event_type }, current.event_type));
    eventType.value = current.event_type;
    payload.value = JSON.stringify(current.payload, null, 2);
    for (const box of channelBoxes) box.checked = (current.channels || []).includes(box.value);
    priority.value = current.priority || "";
    maxRuns.value = current.max_runs ?? "";
  } else {
    eventType.value = (types.find((t) => t.event_type === "new_film") || types[0] || {}).event_type || "";
  }

  function showSample() {
    const spec = types.find((t) => t.event_type === eventType.value);
    const next = spec ? JSON.stringify(spec.sample_payload, null, 2) : "{}";
    if (!payload.value.trim() || payload.value === sample) payload.value = next;
    sample = next;
  }

  let inflight = null;
  async function loadSchedule() {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const mine = inflight;
    signal.addEventListener("abort", () => mine.abort());
    schedule.setAttribute("aria-busy", "true");
    try {
      const answer = await get("campaigns:schedule", {
        query: { cron: cron.value.trim(), timezone: timezone.value.trim(), count: 5 },
        signal: mine.signal,
      });
      cronError.textContent = zoneError.textContent = "";
      cron.removeAttribute("aria-invalid");
      timezone.removeAttribute("aria-invalid");
      clear(schedule, fireTimes(answer));
    } catch (error) {
      if (error.name === "AbortError") return;
      const byField = Object.fromEntries((error.fields || []).map((f) => [f.loc, f.msg]));
      cronError.textContent = byField.cron || "";
      zoneError.textContent = byField.timezone || "";
      cron.setAttribute("aria-invalid", byField.cron ? "true" : "false");
      timezone.setAttribute("aria-invalid", byField.timezone ? "true" : "false");
      clear(schedule, h("h3", {}, "Next five fire times"), error.fields && error.fields.length ? info("Fix the schedule to see when it fires.") : errorBox(error));
    } finally {
      schedule.removeAttribute("aria-busy");
    }
  }
  const scheduleSoon = debounce(loadSchedule, 300);
  signal.addEventListener("abort", () => scheduleSoon.cancel());
  cron.addEventListener("input", scheduleSoon);
  timezone.addEventListener("input", scheduleSoon);
  eventType.addEventListener("change", showSample);

  function body() {
    let parsed;
    try {
      parsed = JSON.parse(payload.value || "{}");
    } catch (error) {
      throw new ApiError(422, { error: { message: "The request is not valid", fields: [{ loc: "payload", msg: `not JSON: ${error.message}`, type: "json" }] } });
    }
    const channels = channelBoxes.filter((b) => b.checked).map((b) => b.value);
    return {
      name: name.value.trim(),
      cron: cron.value.trim(),
      timezone: timezone.value.trim(),
      segment_id: segment.value.trim(),
      event_type: eventType.value,
      payload: parsed,
      channels: channels.length ? channels : null,
      priority: priority.value || null,
      max_runs: maxRuns.value ? Number(maxRuns.value) : null,
    };
  }

  const form = h(
    "form",
    { class: "editor", novalidate: true },
    typesProblem,
    field("Name", name),
    h("div", { class: "row" }, field("Cron", cron, "minute hour day-of-month month day-of-week, e.g. 0 9 * * 1"), field("Time zone", timezone)),
    h("div", { class: "row" }, cronError, zoneError),
    h("div", { class: "row" }, field("Segment", segment), field("Event type", eventType), field("Priority", priority), field("Max runs", maxRuns, "empty: no limit")),
    h(
      "fieldset",
      { class: "channels" },
      h("legend", {}, "Channels (none: the event type's defaults)"),
      channelBoxes.map((box) => h("label", { for: box.id, class: "check" }, box, ` ${box.value}`)),
    ),
    field("Payload (JSON, validated by the event type)", payload),
    errors,
    h("div", { class: "actions" }, save),
    zoneList,
    segmentList,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      const answer = await busy(save, "Saving…", async () => {
        const data = body();
        return isNew ? post("campaigns", data) : put(`campaigns/${seg(campaignId)}`, data);
      });
      if (isNew) navigate(`#/campaigns/${enc(answer.campaign_id)}`);
      else {
        current = answer;
        showState();
        clear(errors, info("Saved."));
      }
    } catch (error) {
      clear(errors, errorBox(error));
    }
  });

  const state = h("div");
  const runs = h("div");
  function showState() {
    if (!current) return;
    const toggle = h("button", { type: "button", class: "secondary" }, current.status === "ACTIVE" ? "Pause" : "Resume");
    toggle.disabled = current.status === "INACTIVE";
    toggle.addEventListener("click", async () => {
      try {
        current = await busy(toggle, "…", () => post(`campaigns/${seg(campaignId)}/${current.status === "ACTIVE" ? "pause" : "resume"}`));
        showState();
      } catch (error) {
        clear(state, errorBox(error));
      }
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the campaign “${current.name}”? Its runs stay visible on their events.`)) return;
      try {
        await busy(remove, "Deleting…", () => del(`campaigns/${seg(campaignId)}`));
        navigate("#/campaigns");
      } catch (error) {
        clear(state, errorBox(error));
      }
    });
    clear(
      state,
      facts([
        ["Status", badge(current.status)],
        ["Next run", time(current.next_run_at)],
        ["Last run", time(current.last_triggered_at)],
        ["Runs", `${current.runs_count}${current.max_runs ? ` of ${current.max_runs}` : ""}`],
        ["Created", time(current.created_at)],
        ["Updated", time(current.updated_at)],
      ]),
      h("div", { class: "actions" }, toggle, remove),
    );
  }

  async function loadRuns() {
    try {
      const answer = await get(`campaigns/${seg(campaignId)}/runs`, { query: { limit: 20 }, signal });
      clear(
        runs,
        table(
          [
            { label: "Fire time", cell: (r) => time(r.fire_time) },
            { label: "Triggered", cell: (r) => time(r.triggered_at) },
            { label: "Event", cell: (r) => link(`#/events/${enc(r.event_id)}`, "open") },
            { label: "Recipients", cell: (r) => String(r.recipients), class: "num" },
            { label: "Pages", cell: (r) => String(r.pages_expanded), class: "num" },
            { label: "Statuses", cell: (r) => counts(r.status_counts) },
            { label: "Email feedback", cell: (r) => counts(r.feedback_counts) },
          ],
          answer.items,
          { empty: "No runs yet.", caption: "The newest 20 runs" },
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") clear(runs, errorBox(error));
    }
  }

  mount(view, 
    pageTitle(view, isNew ? "New campaign" : `Campaign ${current.name}`),
    h("p", {}, link("#/campaigns", "← All campaigns")),
    current ? state : null,
    h("div", { class: "columns editor-columns" }, section(isNew ? "Create" : "Edit", form), section("When it fires", schedule)),
    current ? section("Runs", runs) : null,
  );
  showSample();
  showState();
  loadSchedule();
  if (current) loadRuns();
  get("segments", { signal })
    .then((answer) => segmentList.append(...answer.items.map((s) => h("option", { value: s.segment_id }, s.name))))
    .catch(() => {});
}
