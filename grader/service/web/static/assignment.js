// The assignment page: before anything is sent, list the graded files found and missing and refuse what
// the service would refuse (its own words, from the page's data-rules); then hand in with fetch.
"use strict";

function formatLimit(bytes) {
  return `${+(bytes / 1048576).toFixed(2)} MiB`;
}

function baseName(path) {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1];
}

// The names inside a .zip, from its central directory (no library: the format is simple).
async function zipNames(file) {
  const tail = new DataView(await file.slice(Math.max(0, file.size - 65557)).arrayBuffer());
  let end = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) return null;
  const count = tail.getUint16(end + 10, true);
  const size = tail.getUint32(end + 12, true);
  const offset = tail.getUint32(end + 16, true);
  if (offset === 0xffffffff || size === 0xffffffff) return null; // zip64: the service will tell
  const directory = new DataView(await file.slice(offset, offset + size).arrayBuffer());
  const names = [];
  const decoder = new TextDecoder();
  for (let at = 0, n = 0; n < count && at + 46 <= directory.byteLength; n++) {
    if (directory.getUint32(at, true) !== 0x02014b50) return null;
    const nameLength = directory.getUint16(at + 28, true);
    const extra = directory.getUint16(at + 30, true);
    const comment = directory.getUint16(at + 32, true);
    names.push(decoder.decode(new Uint8Array(directory.buffer, directory.byteOffset + at + 46, nameLength)));
    at += 46 + nameLength + extra + comment;
  }
  return names;
}

async function examine(files, rules) {
  const m = rules.messages;
  const list = Array.from(files);
  if (list.length === 0) return { refusal: m.none };
  const zips = list.filter((f) => f.name.toLowerCase().endsWith(".zip"));
  if (zips.length && list.length > 1) return { refusal: m.mixed };
  if (!zips.length) {
    const odd = list.find((f) => !f.name.endsWith(".py"));
    if (odd) return { refusal: m.odd.replace("{name}", `'${odd.name}'`) };
    if (new Set(list.map((f) => f.name)).size !== list.length) return { refusal: m.twice };
  }
  const total = list.reduce((sum, f) => sum + f.size, 0);
  if (total > rules.maxUploadBytes) return { refusal: m.too_large.replace("{limit}", formatLimit(rules.maxUploadBytes)) };
  let names = list.map((f) => f.name);
  if (zips.length) {
    const inside = await zipNames(zips[0]).catch(() => null);
    if (inside === null) return { found: null };
    names = inside.filter((n) => !n.startsWith("__MACOSX/") && !n.endsWith("/")).map(baseName);
  }
  const found = rules.graded.filter((g) => names.includes(g));
  const missing = rules.required.filter((g) => !found.includes(g));
  return { found, missing };
}

function show(box, result) {
  box.replaceChildren();
  const add = (tag, text, cls) => {
    const node = document.createElement(tag);
    node.textContent = text;
    if (cls) node.className = cls;
    box.append(node);
    return node;
  };
  if (result.refusal) { add("p", result.refusal, "error").setAttribute("role", "alert"); return; }
  if (result.found === null) { add("p", "The .zip's files will be listed by the grader.", "hint"); return; }
  add("p", result.found.length ? `Found: ${result.found.join(", ")}` : "Found no graded file.", result.found.length ? "notice" : "error");
  if (result.missing.length) add("p", `Missing: ${result.missing.join(", ")} (its checks will score 0)`, "error");
}

window.graderPages.push(() => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const rules = JSON.parse(form.dataset.rules);
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const box = document.getElementById("upload-check");
  const button = document.getElementById("submit-button");
  let verdict = null;
  let key = null;

  async function changed() {
    key = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
    verdict = await examine(input.files, rules);
    show(box, verdict);
    button.disabled = Boolean(verdict.refusal);
  }
  input.addEventListener("change", changed);
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    input.files = event.dataTransfer.files;
    changed();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!verdict) await changed();
    if (verdict.refusal || button.disabled) return;
    button.disabled = true; // a double click sends once; the Idempotency-Key covers a retry too
    button.textContent = "Sending…";
    const body = new FormData();
    for (const file of input.files) body.append("files", file);
    try {
      const answer = await fetch(form.action, {
        method: "POST",
        body,
        headers: { "X-CSRF-Token": document.querySelector("main").dataset.csrf, "Idempotency-Key": key, Accept: "application/json" },
        credentials: "same-origin",
      });
      const fallback = answer.status === 413 // refused before the service read it: no JSON then
        ? rules.messages.too_large.replace("{limit}", formatLimit(rules.maxUploadBytes))
        : `the service answered ${answer.status}`;
      const data = await answer.json().catch(() => ({ detail: fallback }));
      if (answer.ok) { window.location.assign(data.url); return; }
      show(box, { refusal: data.detail });
    } catch (error) {
      show(box, { refusal: "The upload did not reach the grader; check your connection and try again." });
    }
    button.disabled = false;
    button.textContent = "Submit";
  });
});
