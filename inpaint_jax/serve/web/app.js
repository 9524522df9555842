// The inpainting page: pick a model and a photo, paint the hole, run the
// z-search on the server (inpaint_jax/serve/) and watch it. No libraries.
'use strict';

const $ = (id) => document.getElementById(id);
const DISPLAY = 512;  // The photo is shown fitted into a DISPLAY px square.
const POLL_MS = 250;

const state = {
  model: null,     // /api/model's answer for the chosen model.
  photo: null,     // {url, width, height, name}
  box: null,       // [left, top, side] of the model's view, photo pixels.
  scale: 1,        // Display pixels per photo pixel.
  job: null,       // The running job's id.
  painting: false,
  last: null,      // The last brush point, photo pixels.
};

// --- Small helpers ---------------------------------------------------------

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body)};
  const response = await fetch(path, options);
  let answer;
  try {
    answer = await response.json();
  } catch (e) {
    throw new Error(`The server answered ${response.status} without JSON.`);
  }
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function showError(message) {
  $('error').textContent = message || '';
  $('error').hidden = !message;
}

function setNote(id, text, warn) {
  $(id).textContent = text || '';
  $(id).classList.toggle('warn', Boolean(warn));
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('The browser cannot show this image; use a JPEG or PNG file.'));
    image.src = url;
  });
}

// --- Models ----------------------------------------------------------------

async function loadModels() {
  const listing = await api('/api/models');
  const select = $('model');
  select.replaceChildren();
  for (const model of listing.models) {
    const option = new Option(model.error ? `${model.name} (unreadable)` : model.name, model.path);
    option.disabled = Boolean(model.error);
    select.add(option);
  }
  const usable = listing.models.filter((m) => !m.error);
  const preferred = usable.find((m) => m.name.startsWith('celeba')) || usable[0];
  if (!preferred) {
    setNote('model-info', `No models in ${listing.models_dir}: type a model directory.`, true);
    return;
  }
  select.value = preferred.path;
  await chooseModel(preferred.path);
}

async function chooseModel(model) {
  showError('');
  const info = await api('/api/model?model=' + encodeURIComponent(model));
  state.model = info;
  const steps = info.steps ? `, ${info.steps} training steps` : '';
  setNote('model-info', `${info.resolution}×${info.resolution} DCGAN` +
          `${info.dataset ? ' of ' + info.dataset : ''}${steps}; importance window ${info.window}.`);
  const count = info.test_images;
  $('test-index').max = Math.max(0, count - 1);
  $('load-test').disabled = $('random-test').disabled = !count;
  setNote('data-note', count ? `${count} ${info.dataset} test images (0–${count - 1}).`
                             : info.data_note, !count);
  $('encoder').disabled = !info.encoder;
  if (!info.encoder) $('encoder').checked = false;
  if (state.photo) await refreshView();
}

// --- The photo -------------------------------------------------------------

async function setPhoto(url, name, crop) {
  const image = await loadImage(url);
  const width = image.naturalWidth, height = image.naturalHeight;
  state.photo = {url, width, height, name};
  state.scale = Math.min(DISPLAY / width, DISPLAY / height);
  const stage = $('stage');
  stage.classList.remove('empty');
  stage.classList.toggle('pixelated', state.scale > 1);
  for (const canvas of [$('photo'), $('overlay')]) {
    canvas.width = width;
    canvas.height = height;
    canvas.style.width = `${width * state.scale}px`;
    canvas.style.height = `${height * state.scale}px`;
  }
  $('photo').getContext('2d').drawImage(image, 0, 0);
  clearOverlay();
  if (crop) $('crop').value = crop;
  $('results').hidden = true;
  await refreshView();
}

async function loadTest(index) {
  showError('');
  const answer = await api(`/api/test_image?model=${encodeURIComponent(state.model.path)}&index=${index}`);
  $('test-index').value = answer.index;
  await setPhoto(answer.image, `${answer.dataset}_test_${answer.index}`, answer.crop);
}

// The model's square, and the mask of a kind, for this photo.
async function refreshView() {
  if (!state.photo || !state.model) return;
  const kind = $('mask-kind').value;
  const query = new URLSearchParams({
    model: state.model.path, width: state.photo.width, height: state.photo.height,
    crop: $('crop').value, seed: $('seed').value || 0});
  if (kind !== 'draw') query.set('kind', kind);
  const view = await api('/api/view?' + query);
  state.box = view.box;
  const [left, top, side] = view.box;
  const box = $('box');
  Object.assign(box.style, {
    left: `${left * state.scale}px`, top: `${top * state.scale}px`,
    width: `${side * state.scale}px`, height: `${side * state.scale}px`});
  box.hidden = false;
  if (view.mask) await paintMask(view.mask);
}

// --- The mask: painted on the overlay at the photo's resolution -------------

function overlayContext() {  // Read back for every mask sent: keep it on the CPU.
  return $('overlay').getContext('2d', {willReadFrequently: true});
}

function clearOverlay() {
  const overlay = $('overlay');
  overlayContext().clearRect(0, 0, overlay.width, overlay.height);
}

// Shows a mask PNG (white = known, black = hole) as painted hole.
async function paintMask(url) {
  const image = await loadImage(url);
  const overlay = $('overlay');
  const context = overlayContext();
  const scratch = document.createElement('canvas');
  scratch.width = overlay.width;
  scratch.height = overlay.height;
  const scratchContext = scratch.getContext('2d');
  scratchContext.drawImage(image, 0, 0);
  const mask = scratchContext.getImageData(0, 0, scratch.width, scratch.height);
  const paint = context.createImageData(overlay.width, overlay.height);
  for (let i = 0; i < mask.data.length; i += 4) {
    if (mask.data[i] < 128) {
      paint.data[i] = 255; paint.data[i + 1] = 42; paint.data[i + 2] = 85; paint.data[i + 3] = 255;
    }
  }
  context.putImageData(paint, 0, 0);
}

// The painted overlay as a mask PNG data URL: white = known, black = hole.
function maskDataUrl() {
  const overlay = $('overlay');
  const painted = overlayContext().getImageData(0, 0, overlay.width, overlay.height);
  const scratch = document.createElement('canvas');
  scratch.width = overlay.width;
  scratch.height = overlay.height;
  const context = scratch.getContext('2d');
  const mask = context.createImageData(overlay.width, overlay.height);
  let holes = 0;
  for (let i = 0; i < painted.data.length; i += 4) {
    const value = painted.data[i + 3] > 0 ? 0 : 255;  // Any paint: hole.
    holes += value === 0;
    mask.data[i] = mask.data[i + 1] = mask.data[i + 2] = value;
    mask.data[i + 3] = 255;
  }
  context.putImageData(mask, 0, 0);
  return {url: scratch.toDataURL('image/png'), holes};
}

function photoPoint(event) {
  const rect = $('overlay').getBoundingClientRect();
  return {x: (event.clientX - rect.left) / state.scale,
          y: (event.clientY - rect.top) / state.scale};
}

function brushRadius() {  // Photo pixels; the slider is in display pixels.
  return Number($('brush').value) / 2 / state.scale;
}

function stroke(from, to) {
  const context = overlayContext();
  context.strokeStyle = context.fillStyle = 'rgb(255, 42, 85)';
  context.lineCap = context.lineJoin = 'round';
  context.lineWidth = 2 * brushRadius();
  context.beginPath();
  context.arc(to.x, to.y, brushRadius(), 0, 2 * Math.PI);
  context.fill();
  if (from) {
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }
}

function moveCursor(event) {
  const cursor = $('cursor');
  const rect = $('stage').getBoundingClientRect();
  const size = Number($('brush').value);
  Object.assign(cursor.style, {
    left: `${event.clientX - rect.left}px`, top: `${event.clientY - rect.top}px`,
    width: `${size}px`, height: `${size}px`});
  cursor.hidden = false;
}

function setUpBrush() {
  const overlay = $('overlay');
  overlay.addEventListener('pointerdown', (event) => {
    if (!state.photo || event.button !== 0) return;
    if ($('mask-kind').value !== 'draw') $('mask-kind').value = 'draw';  // Edit the kind's mask.
    overlay.setPointerCapture(event.pointerId);
    state.painting = true;
    state.last = photoPoint(event);
    stroke(null, state.last);
    event.preventDefault();
  });
  overlay.addEventListener('pointermove', (event) => {
    moveCursor(event);
    if (!state.painting) return;
    const point = photoPoint(event);
    stroke(state.last, point);
    state.last = point;
  });
  const stop = () => { state.painting = false; state.last = null; };
  overlay.addEventListener('pointerup', stop);
  overlay.addEventListener('pointercancel', stop);
  overlay.addEventListener('pointerleave', () => { $('cursor').hidden = true; });
  $('brush').addEventListener('input', () => { $('brush-value').value = $('brush').value; });
  $('clear').addEventListener('click', () => {
    clearOverlay();
    $('mask-kind').value = 'draw';
  });
}

// --- The job -----------------------------------------------------------------

async function startInpainting() {
  showError('');
  if (!state.model) return showError('Pick a model first.');
  if (!state.photo) return showError('Upload a photo or load a test image first.');
  const request = {
    model: state.model.path, image: state.photo.url, crop: $('crop').value,
    iterations: $('iterations').value, restarts: $('restarts').value,
    lam: $('lam').value, seed: $('seed').value || 0,
    encoder: $('encoder').checked, refine: $('refine').value};
  const kind = $('mask-kind').value;
  if (kind === 'draw') {
    const mask = maskDataUrl();
    if (!mask.holes) return showError('Paint the hole first (or choose a mask kind).');
    request.mask = mask.url;
  } else {
    request.mask_kind = kind;
  }
  const job = await api('/api/inpaint', request);
  state.job = job.id;
  $('inpaint').disabled = true;
  $('cancel').disabled = false;
  $('results').hidden = true;
  $('progress').hidden = false;
  $('preview').removeAttribute('src');
  await poll(job.id);
}

async function poll(id) {
  while (state.job === id) {
    let job;
    try {
      job = await api(`/api/jobs/${id}`);
    } catch (error) {
      finish();
      return showError(error.message);
    }
    showProgress(job);
    if (job.status === 'done') { finish(); return showResults(job); }
    if (job.status === 'error') { finish(); return showError(job.error); }
    if (job.status === 'cancelled') { finish(); return; }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function finish() {
  state.job = null;
  $('inpaint').disabled = false;
  $('cancel').disabled = true;
}

function showProgress(job) {
  $('bar').max = job.total;
  $('bar').value = job.step;
  if (job.preview) $('preview').src = job.preview;
  const seconds = job.seconds ? ` · ${job.seconds.toFixed(1)} s` : '';
  const loss = job.loss === null ? '' : ` · loss ${job.loss.toFixed(4)}`;
  $('status').textContent = `${job.phase}: step ${job.step} / ${job.total}${loss}${seconds}`;
}

function showResults(job) {
  const base = (state.photo.name || 'photo').replace(/\.[^.]*$/, '').replace(/[^\w-]+/g, '_');
  for (const name of ['masked', 'generated', 'blended', 'result', 'mask']) {
    const info = job.results[name];
    const link = $(`dl-${name}`);
    link.href = info.url;
    link.download = `${base}_${name}.png`;
    const image = $(`res-${name}`);
    if (image) image.src = info.url;
  }
  const full = job.results.result;
  $('res-result').style.imageRendering = full.width < 192 ? 'pixelated' : 'auto';
  $('full-size').textContent = `${full.width}×${full.height}`;
  $('results').hidden = false;
}

// --- Wiring --------------------------------------------------------------------

function guarded(handler) {  // Any failure -> the error line, not the console.
  return (...args) => Promise.resolve(handler(...args)).catch((error) => {
    showError(error.message);
  });
}

function setUp() {
  $('model').addEventListener('change', guarded(() => chooseModel($('model').value)));
  $('use-path').addEventListener('click', guarded(async () => {
    const path = $('model-path').value.trim();
    if (!path) throw new Error('Type the path of a model directory first.');
    await chooseModel(path);
    const select = $('model');
    if (![...select.options].some((o) => o.value === state.model.path)) {
      select.add(new Option(state.model.path, state.model.path));
    }
    select.value = state.model.path;
  }));
  $('upload').addEventListener('change', guarded(async () => {
    const file = $('upload').files[0];
    if (!file) return;
    showError('');
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error('The file cannot be read.'));
      reader.readAsDataURL(file);
    });
    $('upload').value = '';  // The same file again is a change too.
    await setPhoto(url, file.name, 'center');
  }));
  $('load-test').addEventListener('click', guarded(() => loadTest(Number($('test-index').value) || 0)));
  $('random-test').addEventListener('click', guarded(() =>
    loadTest(Math.floor(Math.random() * state.model.test_images))));
  $('crop').addEventListener('change', guarded(refreshView));
  $('mask-kind').addEventListener('change', guarded(async () => {
    if ($('mask-kind').value === 'draw') clearOverlay();
    await refreshView();
  }));
  $('seed').addEventListener('change', guarded(async () => {
    if ($('mask-kind').value !== 'draw') await refreshView();
  }));
  $('inpaint').addEventListener('click', guarded(startInpainting));
  $('cancel').addEventListener('click', guarded(async () => {
    if (state.job) await api(`/api/jobs/${state.job}/cancel`, {});
  }));
  setUpBrush();
  guarded(loadModels)();
}

setUp();
