// The submission page while it grades: server-sent events, or polling where they fail; when the grade
// is in, the page reloads to show the report (rendered by the service).
"use strict";

function describe(state) {
  if (state.status === "queued") {
    return state.queue_position ? `Waiting to be graded: number ${state.queue_position} in the queue.` : "Waiting to be graded.";
  }
  if (state.status === "running") return "Grading now…";
  if (state.status === "graded") return "Graded.";
  return "The grader could not grade this submission (for reasons of its own, not of your code); the course's staff can see why and regrade it.";
}

function showQuestions(box, questions) {
  box.replaceChildren();
  (questions || []).forEach((q, index) => {
    const line = document.createElement("p");
    const label = document.createElement("label");
    const bar = document.createElement("progress");
    bar.id = `progress-${index + 1}`;
    label.htmlFor = bar.id;
    label.textContent = q.name;
    bar.max = q.total;
    bar.value = q.done;
    bar.textContent = `${q.done} of ${q.total}`;
    line.append(label, " ", bar, ` ${q.done} of ${q.total} checks`);
    box.append(line);
    const done = (q.checks || []).filter((check) => check.done);
    if (done.length) {
      const list = document.createElement("ul");
      list.className = "checks-done";
      for (const check of done) {
        const item = document.createElement("li");
        item.textContent = `✓ ${check.id}`;
        item.title = check.summary || "";
        list.append(item);
      }
      box.append(list);
    }
  });
}

window.graderPages.push(() => {
  const live = document.getElementById("live");
  if (!live) return;
  const status = document.getElementById("live-status");
  const questions = document.getElementById("live-questions");
  let done = false;

  function update(state) {
    status.textContent = describe(state);
    live.dataset.statusNow = state.status;
    showQuestions(questions, state.questions);
    if (state.final && !done) {
      done = true;
      if (state.status === "graded" && live.dataset.hasReport !== "true") window.location.reload();
    }
  }

  function poll() {
    if (done) return;
    fetch(live.dataset.status, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((answer) => (answer.ok ? answer.json() : null))
      .then((state) => { if (state) update(state); })
      .catch(() => {})
      .finally(() => { if (!done) setTimeout(poll, 2000); });
  }

  if (live.dataset.final === "true") return;
  if (!window.EventSource) { poll(); return; }
  const source = new EventSource(live.dataset.events);
  source.addEventListener("status", (event) => {
    update(JSON.parse(event.data));
    if (done) source.close();
  });
  source.onerror = () => {
    if (done) return;
    source.close();
    poll(); // a proxy that buffers or cuts streams: fall back to polling
  };
});
