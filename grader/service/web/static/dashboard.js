// The assignment dashboard's enhancements: sortable tables, the roster's live filter, the extension
// form in the viewer's own time zone, a confirmation before a mass regrade and its progress while it runs.
// The page works without them.
"use strict";

(function () {
  function sortKey(cell, type) {
    const raw = (cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent).trim();
    if (type !== "number") return raw.toLowerCase();
    const value = Number.parseFloat(raw);
    return Number.isNaN(value) ? null : value;
  }

  function compare(a, b, type) {
    if (a === null || a === "") return b === null || b === "" ? 0 : 1; // empty cells last, both ways
    if (b === null || b === "") return -1;
    if (type === "number") return a - b;
    return a.localeCompare(b, undefined, { numeric: true });
  }

  function sortBy(table, header, direction) {
    const index = header.cellIndex;
    const type = header.dataset.sortType;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map((row) => ({ row, key: sortKey(row.cells[index], type) }));
    const sign = direction === "ascending" ? 1 : -1;
    rows.sort((x, y) => {
      const emptyX = x.key === null || x.key === "";
      const emptyY = y.key === null || y.key === "";
      if (emptyX || emptyY) return compare(x.key, y.key, type);
      return sign * compare(x.key, y.key, type);
    });
    for (const { row } of rows) body.appendChild(row);
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", direction);
  }

  function makeSortable(table) {
    for (const header of table.tHead.rows[0].cells) {
      if (!header.dataset.sortType) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) button.appendChild(header.firstChild);
      header.appendChild(button);
      button.addEventListener("click", () => {
        const next = header.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        sortBy(table, header, next);
      });
    }
  }

  function filterRoster(form, table, count) {
    const input = form.querySelector("input[name=q]");
    const rows = Array.from(table.tBodies[0].rows);
    const apply = () => {
      const needle = input.value.trim().toLowerCase();
      let shown = 0;
      for (const row of rows) {
        row.hidden = needle !== "" && !row.dataset.search.includes(needle);
        if (!row.hidden) shown += 1;
      }
      count.textContent = `Showing ${shown} of ${rows.length} students.`;
      const url = new URL(window.location.href);
      if (needle) url.searchParams.set("q", input.value.trim());
      else url.searchParams.delete("q");
      window.history.replaceState(null, "", url);
    };
    input.addEventListener("input", apply);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply();
    });
  }

  function localInputValue(moment) {
    const pad = (n) => String(n).padStart(2, "0");
    return (
      `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
      `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`
    );
  }

  function extensionForm(form) {
    const select = form.querySelector("select[name=email]");
    const input = form.querySelector("input[name=due_at]");
    const label = form.querySelector("[data-due-label]");
    const offset = form.querySelector("[data-tz-offset]");
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
    form.querySelector("[data-tz-hint]").textContent = `In your time zone (${zone}).`;

    const chosen = () => select.options[select.selectedIndex];
    const fill = () => {
      const option = chosen();
      if (!option || !option.value) {
        label.textContent = "New due date";
        return;
      }
      label.textContent = `New due date for ${option.dataset.name}`;
      const due = new Date(option.dataset.due);
      if (!Number.isNaN(due.getTime())) input.value = localInputValue(due);
    };
    // The server wrote the chosen student's due date in UTC; a refused value is the one typed (local).
    if (input.getAttribute("aria-invalid") !== "true" && input.value) fill();
    select.addEventListener("change", fill);
    form.addEventListener("submit", () => {
      const moment = new Date(input.value);
      // Minutes east of UTC at that date (its own daylight saving time), as the settings pages send.
      offset.value = Number.isNaN(moment.getTime()) ? "" : String(-moment.getTimezoneOffset());
    });
    for (const link of document.querySelectorAll("a[data-extend]")) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        select.value = link.dataset.extend;
        fill();
        form.scrollIntoView({ block: "center" });
        input.focus();
      });
    }
  }

  function confirmFirst(form) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  const REGRADE_POLL_MS = 2000;

  // A running regrade's counts, asked again every few seconds until it is finished (the page's own
  // numbers are those of its load); the end is announced once, to screen readers too. A newer regrade,
  // a session that ended or access that was taken away stops the asking, with what to do.
  function followRegrade(paragraph) {
    const announce = document.querySelector("[data-regrade-announce]");
    const bar = paragraph.querySelector("progress");
    const stop = (why) => {
      paragraph.removeAttribute("data-running");
      if (announce) announce.textContent = why;
    };
    const show = (progress) => {
      if (progress.id !== paragraph.dataset.regradeId) {
        stop("A newer regrade was asked for: reload the page to follow it.");
        return true;
      }
      for (const name of ["queued", "running", "done", "failed"]) {
        paragraph.querySelector(`[data-count=${name}]`).textContent = String(progress[name]);
      }
      if (bar) bar.value = progress.done + progress.failed;
      if (!progress.finished) return false;
      paragraph.querySelector("[data-finished]").hidden = false;
      stop(`Regrade finished: ${progress.done} done, ${progress.failed} failed. Reload the page for the new scores.`);
      return true;
    };
    const ask = () => {
      fetch(paragraph.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((answer) => {
          if (answer.redirected || (answer.status >= 400 && answer.status < 500)) {
            stop("The regrade's progress is no longer shown here: reload the page.");
            return;
          }
          if (!answer.ok) throw new Error(String(answer.status));
          return answer.json().then((progress) => {
            if (!show(progress)) window.setTimeout(ask, REGRADE_POLL_MS);
          });
        })
        .catch(() => window.setTimeout(ask, 5 * REGRADE_POLL_MS)); // a restart, a lost network: later
    };
    window.setTimeout(ask, REGRADE_POLL_MS);
  }

  function dashboard() {
    for (const table of document.querySelectorAll("table.sortable")) makeSortable(table);
    const roster = document.getElementById("roster-table");
    const filter = document.querySelector("form.roster-filter");
    const count = document.getElementById("roster-count");
    if (roster && filter && count) filterRoster(filter, roster, count);
    const extension = document.getElementById("extension");
    if (extension) extensionForm(extension);
    for (const form of document.querySelectorAll("form[data-confirm]")) confirmFirst(form);
    const regrade = document.querySelector("#regrade-progress[data-running]");
    if (regrade) followRegrade(regrade);
  }

  window.graderPages = window.graderPages || [];
  window.graderPages.push(dashboard);
})();
