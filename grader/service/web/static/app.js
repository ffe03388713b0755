// grader's only script: progressive enhancement of server-rendered pages (they work without it).
"use strict";

// Times in the viewer's own time zone, with the time left before a due date.
function describeRemaining(ms) {
  if (ms <= 0) return "past due";
  const hours = Math.floor(ms / 3600000);
  const days = Math.floor(hours / 24);
  if (days >= 1) return `${days} day${days === 1 ? "" : "s"} ${hours % 24} h left`;
  const minutes = Math.floor(ms / 60000) % 60;
  return `${hours} h ${minutes} min left`;
}

function localizeTimes(root) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    let text = moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    if (node.hasAttribute("data-remaining")) text += ` (${describeRemaining(moment - Date.now())})`;
    node.textContent = text;
    node.title = moment.toISOString();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  for (const init of window.graderPages || []) init();
});

window.graderPages = window.graderPages || [];
window.graderLocalizeTimes = localizeTimes;
