// Notifications: look one up by job, event or user id; a job's timeline, its message as rendered and a redrive;
// a digest's members and a member's digest; an event's jobs; a user's notifications, preferences and inbox.

import { ApiError, CHANNELS, get, redrive, seg } from "./api.js";
import { filters } from "./forms.js";
import {
  badge, browserZone, busy, clear, counts, cursorPager, errorBox, facts, field, h, info, link, localPager, message,
  mount, pageTitle, section, table, time,
} from "./ui.js";

const STATUSES = ["ACCEPTED", "PROCESSING", "SENDING", "SCHEDULED", "RETRYING", "SENT", "DELIVERED", "BOUNCED",
  "COMPLAINED", "FAILED", "EXPIRED", "SKIPPED", "DIGESTED"];

function lookupForm(label, button, placeholder, target, navigate) {
  const input = h("input", { name: label, required: true, spellcheck: "false", autocomplete: "off", placeholder });
  const form = h(
    "form",
    { class: "lookup" },
    field(label, input),
    h("button", { type: "submit" }, button),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) navigate(`${target}/${seg(value)}`);
  });
  return { form, input };
}

/** #/notifications and #/users: three ways in. */
export function lookup({ view, navigate }) {
  const byJob = lookupForm("Job id", "Find notification", "6b24f37b-…", "#/notifications", navigate);
  const byEvent = lookupForm("Event id", "Find event", "6b24f37b-…", "#/events", navigate);
  const byUser = lookupForm("User id", "Find user", "demo-user-1", "#/users", navigate);
  mount(view,
    pageTitle(view, "Find notifications"),
    h("p", { class: "lead" }, "Did it go out? Open a notification by its job id, every job of an event, or a user's notifications."),
    h("div", { class: "lookups" }, byJob.form, byEvent.form, byUser.form),
  );
  (location.hash.startsWith("#/users") ? byUser : byJob).input.focus();
}

/** A detail's value: a time (due_at, …) in the browser's zone with UTC on hover, anything else as text. */
function detailValue(key, value) {
  if (key.endsWith("_at") && typeof value === "string") return time(value);
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function detailText(detail) {
  const skip = new Set(["template_version", "template_id", "provider_message_id", "feedback"]);
  const rest = Object.entries(detail || {}).filter(([k]) => !skip.has(k));
  if (!rest.length) return null;
  return h(
    "ul",
    { class: "detail" },
    rest.map(([k, v]) => h("li", {}, h("span", { class: "muted" }, `${k}: `), detailValue(k, v))),
  );
}

function timeline(history) {
  return table(
    [
      { label: "When", cell: (e) => time(e.at) },
      { label: "Status", cell: (e) => badge(e.status) },
      { label: "Attempt", cell: (e) => String(e.attempt), class: "num" },
      {
        label: "Template",
        cell: (e) => {
          const d = e.detail || {};
          if (d.template_version === undefined) return "";
          return d.template_id ? `${d.template_id} v${d.template_version}` : `v${d.template_version}`;
        },
      },
      { label: "Provider id", cell: (e) => (e.detail && e.detail.provider_message_id ? h("code", {}, e.detail.provider_message_id) : "") },
      { label: "Feedback", cell: (e) => (e.detail && e.detail.feedback) || "" },
      { label: "Error and detail", cell: (e) => [e.error ? h("p", { class: "bad-text" }, e.error) : null, detailText(e.detail)] },
    ],
    history,
    { empty: "No transitions yet.", caption: `Every transition, oldest first (times in ${browserZone()})` },
  );
}

/** Redrive one job's dead letter (asked for again while it is hidden), saying what came of it in `out`. */
async function redriveJob(jobId, out) {
  const onWait = (missing, attempt) => clear(out, info(`Looking for the job's dead letter… (try ${attempt + 2} of 5)`));
  const { redriven, skipped } = await redrive([jobId], { onWait });
  if (redriven.includes(jobId)) {
    clear(out, info("Queued again with a fresh retry budget; the timeline below updates as the worker takes it."));
    return true;
  }
  const refused = skipped.find((s) => s.job_id === jobId);
  clear(out, errorBox(new Error(refused ? `Not redriven: ${refused.reason}` : "No dead letter of this job was found: it may have been redriven already.")));
  return false;
}

function membersTable(members) {
  return table(
    [
      { label: "Member", cell: (m) => link(`#/notifications/${seg(m.job_id)}`, m.job_id) },
      { label: "Occurred", cell: (m) => time(m.occurred_at) },
    ],
    members,
    { empty: "No members: the bucket's record has expired." },
  );
}

/**
 * A digest's members, oldest first: the first 20 the notification came with, then 50 more from
 * GET /notifications/{job_id}/members with the cursor each page gives, for as long as "More members" is pressed.
 */
function digestMembers(jobId, digest, signal) {
  const members = [...digest.members];
  const list = h("div", {}, membersTable(members));
  const out = h("div");
  const more = h("button", { type: "button", class: "secondary" }, "More members");
  const nav = h("div", { class: "actions" });
  let cursor = digest.members_next_cursor;
  const offerMore = () => clear(nav, cursor ? more : null);
  offerMore();
  more.addEventListener("click", async () => {
    clear(out);
    try {
      const page = await busy(more, "Loading…", () =>
        get(`notifications/${seg(jobId)}/members`, { query: { limit: 50, cursor }, signal }));
      members.push(...page.items);
      clear(list, membersTable(members));
      cursor = page.next_cursor;
      offerMore();
    } catch (error) {
      if (error.name !== "AbortError") clear(out, errorBox(error));
    }
  });
  const count = digest.count === null ? "?" : String(digest.count);
  return section(
    `Digest of ${count} notification${digest.count === 1 ? "" : "s"}`,
    facts([
      ["First", digest.first_at ? time(digest.first_at) : null],
      ["Last", digest.last_at ? time(digest.last_at) : null],
      ["Closed", digest.closed_at ? time(digest.closed_at) : null],
    ]),
    h("p", { class: "muted" }, `The notifications collected into this one, oldest first (times in ${browserZone()}).`),
    list,
    nav,
    out,
  );
}

/** #/notifications/{job_id} */
export async function job({ view, params: [jobId], signal }) {
  const head = h("div");
  const actions = h("div", { class: "actions" });
  const outcome = h("div");
  const digest = h("div");
  const history = h("div");
  const rendered = h("div");
  const remote = { images: false }; // the operator's choice for this message's remote images, kept across a refresh
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  mount(view,
    pageTitle(view, "Notification", refresh),
    head,
    actions,
    outcome,
    digest,
    section("Timeline", history),
    section("Message as rendered", rendered),
  );

  async function load() {
    let data;
    try {
      data = await get(`notifications/${seg(jobId)}`, { signal });
    } catch (error) {
      if (error.name !== "AbortError") clear(head, errorBox(error));
      clear(history);
      return;
    }
    clear(
      head,
      facts([
        ["Job id", h("code", {}, data.job_id)],
        ["Status", badge(data.status)],
        ["Channel", data.channel],
        ["User", link(`#/users/${seg(data.user_id)}`, data.user_id)],
        ["Event", [link(`#/events/${seg(data.event_id)}`, data.event_id), ` (${data.event_type})`]],
        ["Attempts", String(data.attempts)],
        ["Created", time(data.created_at)],
        ["Updated", time(data.updated_at)],
        data.send_after ? ["Send after", time(data.send_after)] : null,
        ["Expires", time(data.expires_at)],
        ["Template version", data.template_version ? `v${data.template_version}` : null],
        ["Provider message id", data.provider_message_id ? h("code", {}, data.provider_message_id) : null],
        // SES's opens (email only) and the clicks SES or the job's short links counted; the first of each is in the
        // timeline (feedback Open, Click, CLICKED).
        data.channel === "email" ? ["Opens", String(data.opens || 0)] : null,
        ["Clicks", String(data.clicks || 0)],
        data.last_error ? ["Last error", h("span", { class: "bad-text" }, data.last_error)] : null,
        // A DIGESTED notification went out in its digest, whose page lists it among the digest's members.
        data.digest_job_id ? ["Sent in digest", link(`#/notifications/${seg(data.digest_job_id)}`, data.digest_job_id)] : null,
      ]),
    );
    clear(digest, data.digest ? digestMembers(jobId, data.digest, signal) : null);
    clear(actions);
    if (data.status === "FAILED") {
      const button = h("button", { type: "button", class: "danger" }, "Redrive");
      button.addEventListener("click", async () => {
        clear(outcome);
        try {
          const queued = await busy(button, "Redriving…", () => redriveJob(jobId, outcome));
          if (queued) setTimeout(load, 2000);
        } catch (error) {
          clear(outcome, errorBox(error));
        }
      });
      actions.append(button, h("span", { class: "muted" }, " sends the job back through the worker with a fresh retry budget"));
    }
    clear(history, timeline(data.history));
    loadRendered();
  }

  async function loadRendered() {
    try {
      const answer = await get(`notifications/${seg(jobId)}/rendered`, { signal });
      clear(
        rendered,
        h(
          "p",
          { class: "muted" },
          `${answer.template_id} v${answer.template_version}, rendered again with the job's payload for a sample ` +
            "recipient with this user id (the profile's other fields stay with the Auth service).",
        ),
        message(answer.rendered, remote),
        h("details", {}, h("summary", {}, "Payload"), h("pre", { class: "json" }, JSON.stringify(answer.payload, null, 2))),
      );
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error instanceof ApiError && error.status === 403) {
        // The message holds the event's payload (reset and confirmation links among them): admin keys only.
        clear(rendered, info("The message is shown to admin keys only: it holds the event's payload, links in it " +
          "included. This key may see the notification's status and timeline above."));
        return;
      }
      clear(rendered, error instanceof ApiError && error.status === 404 ? info(error.message) : errorBox(error));
    }
  }

  refresh.addEventListener("click", load);
  await load();
}

function jobsTable(jobs, empty = "No jobs.") {
  return table(
    [
      { label: "Job", cell: (j) => link(`#/notifications/${seg(j.job_id)}`, j.job_id) },
      { label: "User", cell: (j) => link(`#/users/${seg(j.user_id)}`, j.user_id) },
      { label: "Channel", cell: (j) => j.channel },
      { label: "Status", cell: (j) => badge(j.status) },
      { label: "Attempts", cell: (j) => String(j.attempts), class: "num" },
      { label: "Updated", cell: (j) => time(j.updated_at) },
      { label: "Last error", cell: (j) => j.last_error || "" },
    ],
    jobs,
    { empty },
  );
}

/** #/events/{event_id} */
export async function event({ view, params: [eventId], signal }) {
  const body = h("div");
  mount(view, pageTitle(view, "Event"), body);
  let data;
  try {
    data = await get(`events/${seg(eventId)}`, { signal });
  } catch (error) {
    if (error.name !== "AbortError") clear(body, errorBox(error));
    return;
  }
  clear(
    body,
    facts([
      ["Event id", h("code", {}, data.event_id)],
      ["Type", data.event_type],
      ["Priority", data.priority],
      ["Created", time(data.created_at)],
      data.send_after ? ["Send after", time(data.send_after)] : null,
      ["Expires", time(data.expires_at)],
      data.segment_id ? ["Segment", link(`#/segments/${seg(data.segment_id)}`, data.segment_id)] : null,
      data.segment_id ? ["Pages expanded", String(data.pages_expanded ?? 0)] : null,
      data.recipients !== undefined ? ["Recipients", String(data.recipients)] : null,
      ["Statuses", counts(data.status_counts)],
      ["Email feedback", counts(data.feedback_counts)],
    ]),
    section(
      "Jobs",
      data.jobs === null
        ? info("Over 1,000 recipients: follow the jobs per user, or per campaign run.")
        : localPager(data.jobs, jobsTable, 50),
    ),
  );
}

/** #/users/{user_id}: notifications (paged by the API's cursor), preferences, inbox. */
export async function user({ view, params: [userId], query, signal, navigate }) {
  const { form, selects } = filters(
    { base: `#/users/${seg(userId)}`, query, navigate },
    { label: "Status", name: "status", values: STATUSES },
    { label: "Channel", name: "channel", values: CHANNELS },
  );
  const { status, channel } = selects;

  const pager = cursorPager({
    signal,
    load: (cursor) =>
      get(`users/${seg(userId)}/notifications`, {
        query: { status: status.value, channel: channel.value, limit: 20, cursor },
        signal,
      }),
    render: (items) => jobsTable(items, "No notifications match."),
  });
  const preferences = h("div");
  const inbox = h("div");
  mount(view,
    pageTitle(view, `User ${userId}`),
    section("Notifications", h("p", { class: "muted" }, "Newest first."), form, pager.element),
    h("div", { class: "columns" }, section("Preferences", preferences), section("Inbox (in-app)", inbox)),
  );
  pager.first();
  loadPreferences(userId, preferences, signal);
  loadInbox(userId, inbox, signal);
}

async function loadPreferences(userId, out, signal) {
  try {
    const p = await get(`users/${seg(userId)}/preferences`, { signal });
    const on = (value) => h("span", { class: value ? "ok-text" : "bad-text" }, value ? "on" : "off");
    const categories = Object.entries(p.categories);
    clear(
      out,
      facts([
        ["Channels", Object.entries(p.channels).map(([c, v]) => h("span", { class: "pref" }, `${c} `, on(v)))],
        ["Quiet hours", p.quiet_hours ? `${p.quiet_hours.start}–${p.quiet_hours.end} (${p.quiet_hours.timezone})` : "none"],
        ["Suppressed addresses", p.suppressed.length ? p.suppressed.join(", ") : "none"],
        ["Updated", p.updated_at ? time(p.updated_at) : "never set: everything on"],
      ]),
      table(
        [{ label: "Category", cell: ([name]) => name }, ...Object.keys(p.channels).map((c) => ({ label: c, cell: ([, v]) => on(v[c]) }))],
        categories,
        { caption: "By category" },
      ),
    );
  } catch (error) {
    if (error.name !== "AbortError") clear(out, errorBox(error));
  }
}

function loadInbox(userId, out, signal) {
  let total = h("p", { class: "muted" });
  const pager = cursorPager({
    signal,
    load: (cursor) => get(`users/${seg(userId)}/inbox`, { query: { limit: 10, cursor }, signal }),
    render: (items, page) => {
      total.textContent = `unseen ${page.counts.unseen} · unread ${page.counts.unread} · total ${page.counts.total}`;
      return table(
        [
          { label: "Created", cell: (i) => time(i.created_at) },
          { label: "Title", cell: (i) => i.title || "" },
          { label: "Body", cell: (i) => i.body || "" },
          { label: "State", cell: (i) => (i.archived_at ? "archived" : i.read_at ? "read" : i.seen_at ? "seen" : "unseen") },
          { label: "Job", cell: (i) => link(`#/notifications/${seg(i.job_id)}`, "open") },
        ],
        items,
        { empty: "The inbox is empty." },
      );
    },
  });
  clear(out, total, pager.element);
  pager.first();
}
