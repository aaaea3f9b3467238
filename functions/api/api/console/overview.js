// #/ : the queues' depths, campaigns due in the next hour, the latest failures.

import { get, seg } from "./api.js";
import { badge, browserZone, clear, errorBox, h, link, pageTitle, section, table, time, mount } from "./ui.js";

function depth(title, value, hint, href) {
  if (!value) return h("div", { class: "card" }, h("h2", {}, title), h("p", { class: "big muted" }, "?"), h("p", {}, "Could not be read."));
  return h(
    "div",
    { class: "card" },
    h("h2", {}, title),
    h("p", { class: `big ${value.visible ? "bad-text" : ""}` }, String(value.visible)),
    h("p", { class: "muted" }, `${hint} · in flight ${value.in_flight} · delayed ${value.delayed}`),
    href ? link(href, "Open") : null,
  );
}

export async function render({ view, signal }) {
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  const stamp = h("p", { class: "muted" });
  const body = h("div");
  mount(view, pageTitle(view, "Overview", refresh), stamp, body);

  async function load() {
    let data;
    try {
      data = await get("overview", { signal });
    } catch (error) {
      if (error.name !== "AbortError") clear(body, errorBox(error));
      return;
    }
    clear(stamp, "As of ", time(data.generated_at), ` · times in ${browserZone()}`);
    clear(
      body,
      data.problems.length ? h("div", { class: "error", role: "alert" }, h("p", {}, "Not everything could be read:"), h("ul", {}, data.problems.map((p) => h("li", {}, p)))) : null,
      h(
        "div",
        { class: "cards" },
        depth("Dead-letter queue", data.dlq, "letters", "#/dlq"),
        depth("Delay queue", data.delay_queue, "ready", null),
        h(
          "div",
          { class: "card" },
          h("h2", {}, "Due in the next hour"),
          h("p", { class: "big" }, String(data.campaigns_due.length)),
          h("p", { class: "muted" }, "active campaigns"),
          link("#/campaigns", "Open"),
        ),
      ),
      section(
        "Campaigns due in the next hour",
        table(
          [
            { label: "Campaign", cell: (c) => link(`#/campaigns/${seg(c.campaign_id)}`, c.name) },
            { label: "Next run", cell: (c) => time(c.next_run_at) },
            { label: "Schedule", cell: (c) => `${c.cron} (${c.timezone})` },
            { label: "Segment", cell: (c) => c.segment_id },
            { label: "Status", cell: (c) => badge(c.status) },
          ],
          data.campaigns_due,
          { empty: "No campaign fires in the next hour." },
        ),
      ),
      section(
        "Latest failures",
        h("p", { class: "muted" }, "The newest of a sample of dead letters."),
        table(
          [
            { label: "Dead-lettered", cell: (l) => time(l.dead_lettered_at) },
            { label: "Reason", cell: (l) => l.reason || "" },
            { label: "Error", cell: (l) => l.error || "" },
            { label: "Job", cell: (l) => (l.job_id ? link(`#/notifications/${seg(l.job_id)}`, l.job_id) : h("span", { class: "muted" }, "not a job")) },
            { label: "Type", cell: (l) => l.event_type || "" },
            { label: "Channel", cell: (l) => l.channel || "" },
          ],
          data.latest_failures,
          { empty: "The dead-letter queue is empty." },
        ),
      ),
    );
  }

  refresh.addEventListener("click", load);
  await load();
}
