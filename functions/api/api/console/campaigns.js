// #/campaigns : campaigns with their status, next and last run (paged with the API's cursor).
// #/campaigns/new and #/campaigns/{id} : create or edit, with the cron's next five fire times shown as you type
// (in the campaign's time zone and yours); pause, resume; runs with their recipients and status counts. The editor is
// its form (campaignForm), its fire times (fireTimes), its saving (saveCampaign), its state with pause, resume and
// delete (campaignState) and its runs (campaignRuns).

import { ApiError, CHANNELS, del, get, listEventTypes, post, put, replacing, seg } from "./api.js";
import { eventTypeSelect, samplePayload } from "./forms.js";
import {
  badge, browserZone, busy, clear, counts, cursorPager, debounce, errorBox, facts, field, h, info, link, mount,
  pageTitle, section, table, time, uid, utcText, zoneFormat,
} from "./ui.js";

const runsText = (c) => `${c.runs_count}${c.max_runs ? ` of ${c.max_runs}` : ""}`;

/** #/campaigns */
export async function list({ view, signal }) {
  const pager = cursorPager({
    signal,
    load: (cursor) => get("campaigns", { query: { limit: 20, cursor }, signal }),
    render: (items) =>
      table(
        [
          { label: "Campaign", cell: (c) => link(`#/campaigns/${seg(c.campaign_id)}`, c.name) },
          { label: "Status", cell: (c) => badge(c.status) },
          { label: "Schedule", cell: (c) => [h("code", {}, c.cron), ` ${c.timezone}`] },
          { label: "Next run", cell: (c) => time(c.next_run_at) },
          { label: "Last run", cell: (c) => time(c.last_triggered_at) },
          { label: "Runs", cell: runsText, class: "num" },
          { label: "Segment", cell: (c) => link(`#/segments/${seg(c.segment_id)}`, c.segment_id) },
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

/** The next fire times, as the API computed them: in the campaign's zone and in the browser's (UTC on hover). */
function fireTimesTable(answer) {
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

/**
 * The form of a campaign (a new one's defaults: Mondays at 9 in the browser's zone, to everyone), with a save
 * button. It reads the campaign as the API takes it (a payload that is not JSON is the API's kind of error) and
 * shows the schedule's field errors under the cron and the time zone.
 */
function campaignForm(types, typesProblem, current) {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: uid("zones") }, ["UTC", ...zones].map((z) => h("option", { value: z })));
  const segmentList = h("datalist", { id: uid("segments") }, h("option", { value: "all" }));

  const name = h("input", { name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const cron = h("input", { name: "cron", required: true, spellcheck: "false", autocomplete: "off", class: "mono" });
  const timezone = h("input", { name: "timezone", required: true, list: zoneList.id, autocomplete: "off", spellcheck: "false" });
  const segment = h("input", { name: "segment_id", required: true, list: segmentList.id, autocomplete: "off", spellcheck: "false" });
  const eventType = eventTypeSelect(types, { kept: current && current.event_type });
  const payload = h("textarea", { name: "payload", rows: 7, spellcheck: "false", class: "code-input" });
  const channelBoxes = CHANNELS.map((c) => h("input", { type: "checkbox", name: "channels", value: c, id: uid(c) }));
  const priority = h("select", { name: "priority" }, ["", "high", "normal", "low"].map((p) => h("option", { value: p }, p || "the event type's")));
  const maxRuns = h("input", { name: "max_runs", type: "number", min: "1", step: "1", inputmode: "numeric" });
  const cronError = h("p", { class: "field-error", id: uid("cron-err") });
  const zoneError = h("p", { class: "field-error", id: uid("zone-err") });
  cron.setAttribute("aria-describedby", cronError.id);
  timezone.setAttribute("aria-describedby", zoneError.id);
  const outcome = h("div");
  const save = h("button", { type: "submit" }, current ? "Save changes" : "Create campaign");

  const c = current || { name: "", cron: "0 9 * * 1", timezone: browserZone(), segment_id: "all", payload: null };
  name.value = c.name;
  cron.value = c.cron;
  timezone.value = c.timezone;
  segment.value = c.segment_id;
  if (current) {
    eventType.value = current.event_type;
    payload.value = JSON.stringify(current.payload, null, 2);
    for (const box of channelBoxes) box.checked = (current.channels || []).includes(box.value);
    priority.value = current.priority || "";
    maxRuns.value = current.max_runs ?? "";
  } else {
    eventType.value = (types.find((t) => t.event_type === "new_film") || types[0] || {}).event_type || "";
  }
  const showSample = samplePayload(types, eventType, payload);
  eventType.addEventListener("change", showSample);
  showSample();

  function read() {
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

  /** The schedule's field errors ({cron, timezone}, each a message or nothing), or null: the schedule is valid. */
  function scheduleErrors(byField) {
    cronError.textContent = (byField && byField.cron) || "";
    zoneError.textContent = (byField && byField.timezone) || "";
    for (const [input, name] of [[cron, "cron"], [timezone, "timezone"]]) {
      if (byField) input.setAttribute("aria-invalid", byField[name] ? "true" : "false");
      else input.removeAttribute("aria-invalid");
    }
  }

  const element = h(
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
    outcome,
    h("div", { class: "actions" }, save),
    zoneList,
    segmentList,
  );
  return {
    element,
    save,
    read,
    scheduleErrors,
    schedule: () => ({ cron: cron.value.trim(), timezone: timezone.value.trim() }),
    /** Calls `listener` after each edit of the cron or the time zone. */
    onScheduleEdit: (listener) => {
      cron.addEventListener("input", listener);
      timezone.addEventListener("input", listener);
    },
    /** Offers the static segments ([{segment_id, name}]) beside "all". */
    offerSegments: (segments) => segmentList.append(...segments.map((s) => h("option", { value: s.segment_id }, s.name))),
    /** What saving came to, under the form. */
    say: (...nodes) => clear(outcome, ...nodes),
  };
}

/** The next five fire times of the form's schedule, as the API computes them, now or as it is typed (debounced). */
function fireTimes(form, signal) {
  const element = h("div", { class: "schedule", "aria-live": "polite" });
  const fresh = replacing(signal);
  async function now() {
    const mine = fresh();
    element.setAttribute("aria-busy", "true");
    try {
      const answer = await get("campaigns:schedule", { query: { ...form.schedule(), count: 5 }, signal: mine });
      form.scheduleErrors(null);
      clear(element, fireTimesTable(answer));
    } catch (error) {
      if (error.name === "AbortError") return;
      const byField = Object.fromEntries((error.fields || []).map((f) => [f.loc, f.msg]));
      form.scheduleErrors(byField);
      clear(element, h("h3", {}, "Next five fire times"), error.fields && error.fields.length ? info("Fix the schedule to see when it fires.") : errorBox(error));
    } finally {
      element.removeAttribute("aria-busy");
    }
  }
  return { element, now, soon: debounce(now, 300, signal) };
}

/** Saving: a new campaign is created and opened; a saved one's answer goes to `saved(answer)`. */
function saveCampaign(form, { campaignId, navigate, saved }) {
  form.element.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.say();
    try {
      const answer = await busy(form.save, "Saving…", async () => {
        const data = form.read();
        return campaignId ? put(`campaigns/${seg(campaignId)}`, data) : post("campaigns", data);
      });
      if (!campaignId) navigate(`#/campaigns/${seg(answer.campaign_id)}`);
      else {
        saved(answer);
        form.say(info("Saved."));
      }
    } catch (error) {
      form.say(errorBox(error));
    }
  });
}

/** A saved campaign's status and counts, with Pause or Resume, and Delete. */
function campaignState(campaignId, campaign, navigate) {
  const element = h("div");
  const path = `campaigns/${seg(campaignId)}`;
  function show(next) {
    campaign = next;
    const toggle = h("button", { type: "button", class: "secondary" }, campaign.status === "ACTIVE" ? "Pause" : "Resume");
    toggle.disabled = campaign.status === "INACTIVE";
    toggle.addEventListener("click", async () => {
      try {
        show(await busy(toggle, "…", () => post(`${path}/${campaign.status === "ACTIVE" ? "pause" : "resume"}`)));
      } catch (error) {
        clear(element, errorBox(error));
      }
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the campaign “${campaign.name}”? Its runs stay visible on their events.`)) return;
      try {
        await busy(remove, "Deleting…", () => del(path));
        navigate("#/campaigns");
      } catch (error) {
        clear(element, errorBox(error));
      }
    });
    clear(
      element,
      facts([
        ["Status", badge(campaign.status)],
        ["Next run", time(campaign.next_run_at)],
        ["Last run", time(campaign.last_triggered_at)],
        ["Runs", runsText(campaign)],
        ["Created", time(campaign.created_at)],
        ["Updated", time(campaign.updated_at)],
      ]),
      h("div", { class: "actions" }, toggle, remove),
    );
  }
  show(campaign);
  return { element, show };
}

/** A saved campaign's newest 20 runs. */
async function campaignRuns(campaignId, out, signal) {
  try {
    const answer = await get(`campaigns/${seg(campaignId)}/runs`, { query: { limit: 20 }, signal });
    clear(
      out,
      table(
        [
          { label: "Fire time", cell: (r) => time(r.fire_time) },
          { label: "Triggered", cell: (r) => time(r.triggered_at) },
          { label: "Event", cell: (r) => link(`#/events/${seg(r.event_id)}`, "open") },
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
    if (error.name !== "AbortError") clear(out, errorBox(error));
  }
}

/** #/campaigns/new and #/campaigns/{campaign_id} */
export async function editor({ view, params: [campaignId], signal, navigate }) {
  let types = [];
  let typesProblem = null;
  try {
    types = await listEventTypes();
  } catch (error) {
    // Without them the event type cannot be chosen nor its sample shown: say so, as the API said it.
    typesProblem = errorBox({ explanation: `The event types could not be loaded: ${error.explanation || error.message}` });
  }
  let current = null;
  if (campaignId) {
    try {
      current = await get(`campaigns/${seg(campaignId)}`, { signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      mount(view, pageTitle(view, "Campaign"), errorBox(error), link("#/campaigns", "All campaigns"));
      return;
    }
  }
  const form = campaignForm(types, typesProblem, current);
  const schedule = fireTimes(form, signal);
  form.onScheduleEdit(schedule.soon);
  const state = current ? campaignState(campaignId, current, navigate) : null;
  saveCampaign(form, { campaignId, navigate, saved: (answer) => state.show(answer) });
  const runs = h("div");

  mount(
    view,
    pageTitle(view, current ? `Campaign ${current.name}` : "New campaign"),
    h("p", {}, link("#/campaigns", "← All campaigns")),
    state ? state.element : null,
    h("div", { class: "columns editor-columns" }, section(current ? "Edit" : "Create", form.element), section("When it fires", schedule.element)),
    current ? section("Runs", runs) : null,
  );
  schedule.now();
  if (current) campaignRuns(campaignId, runs, signal);
  get("segments", { signal })
    .then((answer) => form.offerSegments(answer.items))
    .catch(() => {});
}
