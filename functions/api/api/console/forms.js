// Form pieces more than one page uses: a list's filters, the event type select and its sample payload, and the
// code field (a textarea with line numbers and the API's errors at their lines). Text only, as everywhere (ui.js).

import { clear, field, h, uid } from "./ui.js";

/**
 * Filters of a list: a select per choice ({label, name, values}), "any" first, set from the address's query; a
 * change goes to `base` with the chosen values in the query. Returns {form, selects} (selects by name).
 */
export function filters({ base, query, navigate }, ...choices) {
  const selects = {};
  for (const { name, values } of choices) {
    selects[name] = h("select", { name }, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v }, v)));
    selects[name].value = query.get(name) || "";
  }
  const go = () => {
    const q = new URLSearchParams();
    for (const [name, select] of Object.entries(selects)) if (select.value) q.set(name, select.value);
    navigate(`${base}${q.toString() ? `?${q}` : ""}`);
  };
  for (const select of Object.values(selects)) select.addEventListener("change", go);
  const form = h("form", { class: "filters" }, choices.map(({ label, name }) => field(label, selects[name])));
  return { form, selects };
}

/** A select of the service's event types; `kept`, a saved record's type the service may no longer have, is added. */
export function eventTypeSelect(types, { kept, ...props } = {}) {
  const select = h("select", { name: "event_type", ...props }, types.map((t) => h("option", { value: t.event_type }, t.event_type)));
  if (kept && !types.some((t) => t.event_type === kept)) select.append(h("option", { value: kept }, kept));
  return select;
}

/**
 * A function that puts the chosen event type's sample payload in `input` (anything with a value) unless the
 * operator wrote a payload of their own (one neither empty nor the sample put there last); it returns the type.
 */
export function samplePayload(types, eventType, input) {
  let sample = "";
  return () => {
    const spec = types.find((t) => t.event_type === eventType.value);
    const next = spec ? JSON.stringify(spec.sample_payload, null, 2) : "{}";
    if (!input.value.trim() || input.value === sample) input.value = next;
    sample = next;
    return spec;
  };
}

/** A textarea with line numbers; the lines an error names are marked, and listed with a way to go to them. */
export function codeEditor(name, label, value, rows) {
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
