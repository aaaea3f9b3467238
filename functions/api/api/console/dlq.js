// #/dlq : dead letters with their reason and error; select some (or all) and redrive them.

import { REDRIVE_LIMIT, get, redrive, seg } from "./api.js";
import { browserZone, busy, clear, errorBox, field, h, info, link, localPager, pageTitle, table, time, mount } from "./ui.js";

export async function render({ view, signal }) {
  const limit = h("select", { name: "limit" }, [50, 100, 200].map((n) => h("option", { value: String(n) }, String(n))));
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  const selectAll = h("button", { type: "button", class: "secondary" }, "Select all");
  const redriveSelected = h("button", { type: "button", disabled: true }, "Redrive selected");
  const redriveAll = h("button", { type: "button", class: "danger" }, "Redrive all");
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Redrive progress" });
  const outcome = h("div", { "aria-live": "polite" });
  const body = h("div");
  const selected = new Set();
  let letters = [];

  mount(view,
    pageTitle(view, "Dead-letter queue", refresh),
    h(
      "p",
      { class: "muted" },
      `Jobs that failed for good, and records that were not jobs. SQS shows a sample when the queue holds more than ` +
        `the page; letters just listed stay hidden from other readers for 2 seconds. Times in ${browserZone()}.`,
    ),
    h("div", { class: "toolbar" }, field("Show up to", limit), selectAll, redriveSelected, redriveAll, progress),
    outcome,
    body,
  );

  function updateButton() {
    redriveSelected.textContent = `Redrive selected (${selected.size})`;
    redriveSelected.disabled = selected.size === 0;
  }

  function checkbox(letter) {
    const label = `Select the letter of job ${letter.job_id || letter.message_id}`;
    if (!letter.job_id) return h("input", { type: "checkbox", disabled: true, "aria-label": `${label} (not a job: cannot be redriven)` });
    const box = h("input", { type: "checkbox", "aria-label": label, checked: selected.has(letter.job_id) });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(letter.job_id);
      else selected.delete(letter.job_id);
      updateButton();
      const jobs = letters.filter((l) => l.job_id).length;
      selectAll.textContent = selected.size === jobs ? "Select none" : `Select all (${jobs})`;
    });
    return box;
  }

  function renderRows(rows) {
    return table(
      [
        { label: "Select", cell: checkbox },
        { label: "Dead-lettered", cell: (l) => time(l.dead_lettered_at) },
        { label: "Reason", cell: (l) => h("code", {}, l.reason || "—") },
        { label: "Error", cell: (l) => l.error || "" },
        {
          label: "Job",
          cell: (l) =>
            l.job_id
              ? link(`#/notifications/${seg(l.job_id)}`, l.job_id)
              : h("span", { class: "muted" }, l.raw_size ? `raw record, ${l.raw_size} bytes` : "not a job"),
        },
        { label: "Type", cell: (l) => l.event_type || "" },
        { label: "User", cell: (l) => (l.user_id ? link(`#/users/${seg(l.user_id)}`, l.user_id) : "") },
        { label: "Channel", cell: (l) => l.channel || "" },
        { label: "Attempt", cell: (l) => (l.attempt ?? "").toString(), class: "num" },
        { label: "Receives", cell: (l) => String(l.receive_count), class: "num" },
      ],
      rows,
      { empty: "The dead-letter queue is empty." },
    );
  }

  async function load() {
    try {
      const answer = await get("dlq", { query: { limit: limit.value }, signal });
      letters = answer.items;
    } catch (error) {
      if (error.name !== "AbortError") clear(body, errorBox(error));
      return;
    }
    for (const id of [...selected]) if (!letters.some((l) => l.job_id === id)) selected.delete(id);
    show();
  }

  function show() {
    updateButton();
    const jobs = letters.filter((l) => l.job_id).length;
    selectAll.disabled = jobs === 0;
    selectAll.textContent = selected.size && selected.size === jobs ? "Select none" : `Select all (${jobs})`;
    clear(body, h("p", { class: "muted" }, `${letters.length} letter${letters.length === 1 ? "" : "s"}`), localPager(letters, renderRows, 50));
  }

  async function redriveLetters(jobIds) {
    // Letters listed a moment ago are hidden for 2 s: redrive() asks again for the chosen ones it did not find.
    progress.hidden = false;
    progress.max = jobIds ? jobIds.length : 1;
    progress.value = 0;
    const { redriven, skipped, missing } = await redrive(jobIds, {
      onAnswer: (done, refused) => {
        progress.value = jobIds ? done.length + refused.length : 1;
      },
      onWait: (hidden) => clear(outcome, info(`Waiting for ${hidden.length} letter(s) to become visible…`)),
    });
    progress.hidden = true;
    clear(
      outcome,
      h(
        "div",
        { class: redriven.length ? "info" : "error", role: "status" },
        h("p", {}, `Redriven: ${redriven.length}${redriven.length ? ` (${redriven.join(", ")})` : ""}.`),
        skipped.length ? h("p", {}, `Skipped: ${skipped.length}.`) : null,
        skipped.length ? h("ul", {}, skipped.map((s) => h("li", {}, `${s.job_id || s.message_id}: ${s.reason}`))) : null,
        missing && missing.length ? h("p", {}, `Not found (redriven already?): ${missing.join(", ")}`) : null,
      ),
    );
    selected.clear();
    updateButton();
  }

  redriveSelected.addEventListener("click", async () => {
    try {
      await busy(redriveSelected, "Redriving…", () => redriveLetters([...selected]));
    } catch (error) {
      clear(outcome, errorBox(error));
    }
    updateButton(); // busy() restored the label it started with
    load();
  });
  redriveAll.addEventListener("click", async () => {
    if (!window.confirm(`Redrive every letter of the queue (up to ${REDRIVE_LIMIT.toLocaleString("en")})?`)) return;
    try {
      await busy(redriveAll, "Redriving…", () => redriveLetters(null));
    } catch (error) {
      clear(outcome, errorBox(error));
    }
    updateButton();
    load();
  });
  selectAll.addEventListener("click", () => {
    const ids = letters.filter((l) => l.job_id).map((l) => l.job_id);
    if (selected.size === ids.length) selected.clear();
    else for (const id of ids) selected.add(id);
    show();
  });
  limit.addEventListener("change", load);
  refresh.addEventListener("click", load);
  await load();
}
