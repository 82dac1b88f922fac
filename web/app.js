// The page: effects, parameters and presets from GET /v1/effects; photos in; results beside their originals.

import { ConvertError, convert, stages } from "./convert.js";
import { ParamsForm } from "./form.js";
import { keyHeaders, saveKey } from "./key.js";
import { zip } from "./zip.js";

const AT_ONCE = 3; // photos converting together: enough to fill a batch, few enough to show progress
const $ = (id) => document.getElementById(id);

const state = { effects: new Map(), photos: [], results: [] };
const form = new ParamsForm($("params"));

function megabytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** /v1/effects flattened: family members (the filters) listed under their family. */
function effectsFrom(described) {
  const found = [];
  for (const [key, value] of Object.entries(described)) {
    if (value.path) found.push({ name: key, group: null, ...value });
    else for (const [name, member] of Object.entries(value)) found.push({ name, group: key, ...member });
  }
  return found;
}

function listingsOf(effect) {
  // A model-choice parameter's listing: "style" is listed under "styles", "model" under "models".
  return { style: effect.styles, model: effect.models, background: effect.styles };
}

function showEffect() {
  const effect = state.effects.get($("effect").value);
  $("summary").textContent = effect.available ? effect.summary : `${effect.summary}. Its model is not installed here.`;
  form.show(effect.parameters, listingsOf(effect));
  const presets = Object.entries(effect.presets);
  $("preset-row").hidden = presets.length === 0;
  const preset = $("preset");
  preset.replaceChildren(new Option("none", ""), ...presets.map(([name]) => new Option(name, name)));
  $("preset-summary").textContent = "";
  const licences = new Set(Object.values(effect.styles || {}).map((style) => style.licence));
  $("licence").hidden = licences.size === 0;
  $("licence").textContent = licences.size ? `Anime styles: ${[...licences].join(" ")}` : "";
}

function showPreset() {
  const effect = state.effects.get($("effect").value);
  const preset = effect.presets[$("preset").value];
  $("preset-summary").textContent = preset ? `${preset.summary}.` : "";
  form.applyPreset(preset ? preset.sets : {});
}

function addPhotos(files) {
  if (files.length === 0) return;
  state.photos.push(...files); // the service says which it cannot take, in words
  showPhotos();
}

/** The chosen photos stay chosen: converting them again with another effect needs no new upload. */
function showPhotos() {
  $("chosen").replaceChildren(...state.photos.map((file) => Object.assign(document.createElement("li"), { textContent: file.name })));
  $("convert").disabled = state.photos.length === 0;
  $("clear").disabled = state.photos.length === 0;
  $("status").textContent = `${state.photos.length} photo${state.photos.length === 1 ? "" : "s"} chosen`;
}

function request(effect) {
  const query = new URLSearchParams(form.touched());
  if ($("preset").value) query.set("preset", $("preset").value);
  const path = effect.path.replace(/^\//, "");
  return query.size ? `${path}?${query}` : path;
}

function extension(type) {
  return { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" }[type] || "bin";
}

function card(file, effect) {
  const item = document.createElement("li");
  item.className = "result";
  const title = Object.assign(document.createElement("h3"), { textContent: `${file.name}: ${effect.name}` });
  const progress = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
  progress.setAttribute("aria-label", `progress of ${file.name}`);
  const status = Object.assign(document.createElement("p"), { className: "hint", textContent: "waiting" });
  item.append(title, progress, status);
  return { item, progress, status };
}

function compare(file, original, name, url) {
  const box = document.createElement("div");
  box.className = "compare";
  const before = Object.assign(document.createElement("img"), { src: original, alt: `${file.name}, the original` });
  before.className = "before";
  const after = Object.assign(document.createElement("img"), { src: url, alt: `${name} of ${file.name}` });
  after.className = "after";
  const slider = Object.assign(document.createElement("input"), { type: "range", min: 0, max: 100, value: 50 });
  slider.setAttribute("aria-label", `before and after, ${name} of ${file.name}`);
  const move = () => after.style.setProperty("clip-path", `inset(0 0 0 ${slider.value}%)`);
  slider.addEventListener("input", move);
  move();
  box.append(before, after, slider);
  return box;
}

function download(url, filename) {
  return Object.assign(document.createElement("a"), { href: url, download: filename, textContent: "Download", className: "download" });
}

async function convertOne(file, effect, url) {
  const { item, progress, status } = card(file, effect);
  $("results").prepend(item);
  const stem = file.name.replace(/\.[^.]*$/, "");
  try {
    const answer = await convert(url, file, effect.returns, (phase, value) => {
      if (phase === "upload") {
        progress.value = value;
        status.textContent = `uploading ${Math.round(value * 100)}%`;
      } else if (phase === "working") {
        progress.removeAttribute("value");
        status.textContent = "working";
      } else {
        status.textContent = `the service asked to wait: retrying in ${value} s`;
      }
    });
    const original = URL.createObjectURL(file);
    const made = answer.images
      ? await Promise.all(Object.entries(answer.images).map(async ([name, uri]) => [name, await (await fetch(uri)).blob()]))
      : [[effect.name, answer.blob]];
    for (const [name, blob] of made) {
      const url = URL.createObjectURL(blob);
      const filename = `${stem}-${name}.${extension(blob.type)}`;
      state.results.push({ name: filename, blob });
      const figure = document.createElement("figure");
      figure.append(compare(file, original, name, url), download(url, filename));
      item.append(figure);
    }
    progress.remove();
    status.textContent = stages(answer.timing);
    $("download-all").disabled = false;
    return true;
  } catch (error) {
    progress.remove();
    status.className = "error";
    status.textContent = error instanceof ConvertError ? error.message : `Failed: ${error}`;
    return false;
  }
}

async function convertAll(event) {
  event.preventDefault();
  const effect = state.effects.get($("effect").value);
  const url = request(effect);
  const photos = [...state.photos];
  const tooLarge = photos.filter((file) => state.limits && file.size > state.limits.max_bytes);
  for (const file of tooLarge) {
    const { item, progress, status } = card(file, effect);
    progress.remove();
    status.className = "error";
    status.textContent = `Too large: ${file.name} is ${megabytes(file.size)}; the limit is ${megabytes(state.limits.max_bytes)}`;
    $("results").prepend(item);
  }
  const queue = photos.filter((file) => !tooLarge.includes(file));
  $("status").textContent = `converting ${queue.length} photo${queue.length === 1 ? "" : "s"}`;
  let failed = tooLarge.length;
  const workers = Array.from({ length: AT_ONCE }, async () => {
    for (let file = queue.shift(); file; file = queue.shift()) failed += (await convertOne(file, effect, url)) ? 0 : 1;
  });
  await Promise.all(workers);
  $("status").textContent = `done: ${photos.length - failed} converted, ${failed} failed`;
}

async function downloadAll() {
  const archive = await zip(state.results);
  const link = download(URL.createObjectURL(archive), "toonserve.zip");
  link.click();
}

function listen() {
  $("photo").addEventListener("change", (event) => {
    addPhotos([...event.target.files]);
    event.target.value = ""; // so that choosing the same photo again is seen as a choice
  });
  $("clear").addEventListener("click", () => {
    state.photos = [];
    showPhotos();
  });
  const drop = $("drop");
  drop.addEventListener("click", () => $("photo").click());
  drop.addEventListener("keydown", (event) => (event.key === "Enter" || event.key === " ") && $("photo").click());
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addPhotos(event.dataTransfer.files);
  });
  document.addEventListener("paste", (event) => addPhotos(event.clipboardData.files));
  $("effect").addEventListener("change", showEffect);
  $("preset").addEventListener("change", showPreset);
  $("controls").addEventListener("submit", convertAll);
  $("download-all").addEventListener("click", downloadAll);
}

/** The service's effects and limits; where it asks for an API key, the key form instead (null). */
async function describe() {
  const answers = await Promise.all(["v1/effects", "v1/limits"].map((path) => fetch(path, { headers: keyHeaders() })));
  const refused = answers.find((answer) => answer.status === 401);
  $("key-form").hidden = !refused;
  if (refused) {
    $("key-status").textContent = (await refused.json()).error.message;
    $("api-key").focus();
    return null;
  }
  return Promise.all(answers.map((answer) => answer.json()));
}

async function start() {
  listen();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveKey($("api-key").value);
    show().catch(failed);
  });
  await show();
}

async function show() {
  const described = await describe();
  if (!described) return;
  const [effects, limits] = described;
  state.limits = limits;
  $("limits").textContent = `JPEG, PNG or WebP, up to ${megabytes(limits.max_bytes)} each`;
  const select = $("effect");
  select.replaceChildren();
  const groups = new Map();
  for (const effect of effectsFrom(effects)) {
    state.effects.set(effect.name, effect);
    const option = new Option(effect.available ? effect.name : `${effect.name} (not installed)`, effect.name);
    if (!effect.group) {
      select.append(option);
      continue;
    }
    if (!groups.has(effect.group)) {
      groups.set(effect.group, Object.assign(document.createElement("optgroup"), { label: effect.group }));
      select.append(groups.get(effect.group));
    }
    groups.get(effect.group).append(option);
  }
  select.disabled = false;
  showEffect();
}

function failed(error) {
  $("status").className = "error";
  $("status").textContent = `The service could not be read: ${error}`;
}

start().catch(failed);
