// The course settings pages: times entered in the viewer's own time zone, secrets copied, destructive
// buttons confirmed, the member list filtered. The pages work without it (times are then UTC).
"use strict";

(function () {
  const pad = (n) => String(n).padStart(2, "0");

  // A datetime-local value ("2026-05-01T23:59") for a moment, in the viewer's time zone.
  function localValue(moment, withSeconds) {
    let text = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
      `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
    if (withSeconds) text += `:${pad(moment.getSeconds())}`;
    return text;
  }

  // Minutes east of UTC at the date-time an input holds (daylight saving time depends on the date).
  function offsetAt(value) {
    const moment = new Date(value); // a date-time without a zone is read as local time
    return Number.isNaN(moment.getTime()) ? null : -moment.getTimezoneOffset();
  }

  function zoneName() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function localizeInputs(root) {
    const zone = zoneName();
    for (const label of root.querySelectorAll("[data-zone-name]")) {
      label.textContent = zone ? `(your time zone, ${zone})` : "(your time zone)";
    }
    for (const input of root.querySelectorAll('input[type="datetime-local"][data-utc]')) {
      const moment = new Date(input.dataset.utc);
      if (Number.isNaN(moment.getTime())) continue;
      input.value = localValue(moment, moment.getSeconds() !== 0);
      input.removeAttribute("data-utc");
    }
  }

  function fillOffsets(form) {
    for (const input of form.querySelectorAll('input[type="datetime-local"][data-offset-field]')) {
      const hidden = form.querySelector(`input[type="hidden"][name="${input.dataset.offsetField}"]`);
      const offset = input.value ? offsetAt(input.value) : null;
      if (hidden && offset !== null) hidden.value = String(offset);
    }
  }

  async function copy(input, status) {
    try {
      await navigator.clipboard.writeText(input.value);
      if (status) status.textContent = "Copied.";
    } catch (error) {
      input.focus();
      input.select();
      if (status) status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }

  function filterRows(table, query, counter) {
    const wanted = query.toLowerCase().split(/\s+/).filter(Boolean).join(" ");
    let shown = 0;
    const rows = table.tBodies[0] ? table.tBodies[0].rows : [];
    for (const row of rows) {
      const text = row.textContent.toLowerCase().split(/\s+/).filter(Boolean).join(" ");
      const match = text.includes(wanted);
      row.hidden = !match;
      if (match) shown += 1;
    }
    if (counter) counter.textContent = wanted ? `${shown} of ${rows.length} shown` : "";
  }

  function init() {
    localizeInputs(document);
    for (const form of document.querySelectorAll("form")) {
      form.addEventListener("submit", (event) => {
        const question = form.dataset.confirm;
        if (question && !window.confirm(question)) {
          event.preventDefault();
          return;
        }
        fillOffsets(form);
      });
    }
    for (const button of document.querySelectorAll("button[data-copy]")) {
      const input = document.getElementById(button.dataset.copy);
      if (!input) continue;
      const status = button.closest("section")?.querySelector("[data-copy-status]");
      button.hidden = false;
      button.addEventListener("click", () => copy(input, status));
    }
    for (const box of document.querySelectorAll("[data-filter-for]")) {
      const table = document.getElementById(box.dataset.filterFor);
      const input = box.querySelector('input[type="search"]');
      if (!table || !input) continue;
      box.hidden = false;
      const counter = box.querySelector("[aria-live]");
      input.addEventListener("input", () => filterRows(table, input.value, counter));
    }
    const problem = document.querySelector("[data-focus-error]");
    if (problem) problem.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
