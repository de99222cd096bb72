// The compose page: checks the post as it is written (debounced), uploads a chosen
// file at once (it is attached as a media URL), and shows each chosen platform's
// options. The server renders the report; this module only asks for it.
const form = document.getElementById("compose");
const report = document.getElementById("report");
const attached = document.getElementById("attached");
const uploadStatus = document.getElementById("upload-status");
const fileInput = document.getElementById("file");
const token = document.querySelector('meta[name="csrf-token"]').content;
let timer = null;
let sequence = 0;

function fields() {
  const data = new FormData(form);
  data.delete("file");
  data.set("action", "check");
  return data;
}

async function check() {
  const mine = ++sequence;
  if (!form.querySelector('input[name="account"]:checked')) {
    report.innerHTML = '<p class="hint">Choose at least one account.</p>';
    return;
  }
  const response = await fetch(form.dataset.checkUrl, {
    method: "POST", body: fields(), headers: { "x-csrf-token": token },
    credentials: "same-origin",
  });
  if (mine !== sequence) return; // a later check is on its way
  if (response.ok || response.status === 429) {
    // HTML the server rendered (every user text escaped there); 429: the message that
    // checks are over their limit, and when to check again
    report.innerHTML = await response.text();
  } else {
    report.innerHTML = '<p class="issue error">The check failed; try again.</p>';
  }
}

function later() {
  clearTimeout(timer);
  timer = setTimeout(check, 400);
}

function showOptions() {
  const chosen = new Set(
    [...form.querySelectorAll('input[name="account"]:checked')].map((b) => b.dataset.platform));
  const shown = document.getElementById("options");
  for (const section of shown.querySelectorAll("section.options")) {
    if (!chosen.has(section.dataset.platform)) section.remove();
  }
  for (const template of form.querySelectorAll("template[data-platform]")) {
    const name = template.dataset.platform;
    if (chosen.has(name) && !shown.querySelector(`section[data-platform="${name}"]`)) {
      shown.append(template.content.cloneNode(true));
    }
  }
}

function attach(url, name, thumb) {
  const item = document.createElement("li");
  const hidden = document.createElement("input");
  hidden.type = "hidden";
  hidden.name = "media_url";
  hidden.value = url;
  item.append(hidden);
  if (thumb) {
    const img = document.createElement("img");
    img.src = thumb;
    img.alt = name;
    img.width = 64;
    img.height = 64;
    item.append(img);
  }
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = "Remove";
  item.append(label, remove);
  attached.append(item);
}

fileInput.addEventListener("change", async () => {
  const file = fileInput.files[0];
  if (!file) return;
  uploadStatus.textContent = `Uploading ${file.name}…`;
  const data = new FormData();
  data.set("file", file);
  data.set("csrf_token", token);
  const response = await fetch(form.dataset.uploadUrl, {
    method: "POST", body: data, credentials: "same-origin",
    headers: { "x-csrf-token": token, accept: "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    attach(body.url, file.name, body.thumb);
    uploadStatus.textContent = `Uploaded ${file.name}`;
    fileInput.value = "";
    later();
  } else {
    uploadStatus.textContent = `Upload failed: ${body.message || response.status}`;
  }
});

attached.addEventListener("click", (event) => {
  if (event.target.matches("button.remove")) {
    event.target.closest("li").remove();
    later();
  }
});

form.addEventListener("input", (event) => {
  if (event.target === fileInput) return;
  if (event.target.name === "account") showOptions();
  later();
});
form.addEventListener("change", (event) => {
  if (event.target.name === "account") {
    showOptions();
    later();
  }
});
