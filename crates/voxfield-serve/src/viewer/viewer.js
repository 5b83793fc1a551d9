// voxfield viewer: three orthogonal slices and a server-rendered volume view.
// Everything is drawn by the server (PNG); this script only keeps the state
// (crosshair, window, camera) and asks for pictures. No WebGL, no network
// fetch beyond this server.
"use strict";
(function () {
  const base = VOXFIELD.base;
  const $ = (id) => document.getElementById(id);
  const state = { field: null, pos: [0, 0, 0], window: [0, 1], cmap: "gray", mode: "dvr",
                  azimuth: 30, elevation: 20, zoom: 1 };
  let fields = [];

  function status(msg) { $("status").textContent = msg; }

  // One request in flight per image; the latest wanted URL wins. `loaded` runs
  // after each new picture is shown.
  function loader(img, loaded) {
    let busy = false, wanted = null;
    function next() {
      if (busy || wanted === null) return;
      const url = wanted; wanted = null; busy = true;
      const probe = new Image();
      probe.onload = () => {
        img.src = probe.src; busy = false;
        if (loaded) loaded();
        next();
      };
      probe.onerror = () => {
        busy = false;
        fetch(url).then((r) => r.text()).then((t) => status(t.trim())).catch(() => {});
        next();
      };
      probe.src = url;
    }
    return (url) => { wanted = url; next(); };
  }

  const slices = [0, 1, 2].map((a) => {
    const panel = $("p" + a);
    const s = { axis: a, panel, img: panel.querySelector("img"), h: panel.querySelector(".cross-h"),
                v: panel.querySelector(".cross-v") };
    s.load = loader(s.img, () => fit(s));
    return s;
  });

  // Scales a slice to fill its panel, voxels drawn at their physical aspect.
  function fit(s) {
    const f = state.field;
    if (!f) return;
    const [r, c] = others(s.axis);
    const w = f.shape[c] * f.spacing[c], h = f.shape[r] * f.spacing[r];
    const k = Math.min((s.panel.clientWidth - 8) / w, (s.panel.clientHeight - 24) / h);
    s.img.style.width = Math.max(1, Math.floor(w * k)) + "px";
    s.img.style.height = Math.max(1, Math.floor(h * k)) + "px";
  }
  window.addEventListener("resize", () => { for (const s of slices) fit(s); });
  const dvrImg = $("dvr").querySelector("img");
  const loadDvr = loader(dvrImg);
  const others = (a) => [0, 1, 2].filter((b) => b !== a);

  function q(params) {
    return Object.entries(params).map(([k, v]) => k + "=" + encodeURIComponent(v)).join("&");
  }
  function windowParam() { return state.window[0] + "," + state.window[1]; }

  function drawCross(s) {
    const f = state.field, [r, c] = others(s.axis);
    s.h.style.top = (100 * (state.pos[r] + 0.5) / f.shape[r]) + "%";
    s.v.style.left = (100 * (state.pos[c] + 0.5) / f.shape[c]) + "%";
  }

  function updateSlices(except) {
    for (const s of slices) {
      if (s.axis !== except) {
        s.load(base + "slice/" + state.field.name + ".png?" +
               q({ axis: s.axis, index: state.pos[s.axis], window: windowParam(), colormap: state.cmap }));
      }
      drawCross(s);
      s.panel.querySelector(".title").textContent =
        "axis " + s.axis + " = " + state.pos[s.axis] + " / " + state.field.shape[s.axis];
    }
  }

  function updateDvr(draft) {
    const p = $("dvr");
    const side = (n) => Math.max(64, Math.min(draft ? 256 : 1024, Math.floor(n)));
    const params = { mode: state.mode, azimuth: state.azimuth.toFixed(1),
                     elevation: state.elevation.toFixed(1), zoom: state.zoom.toFixed(3),
                     size: side(p.clientWidth) + "x" + side(p.clientHeight), colormap: state.cmap };
    if (state.mode !== "dvr" || state.window) params.window = windowParam();
    loadDvr(base + "render/" + state.field.name + ".png?" + q(params));
  }

  function showValue(pos) {
    fetch(base + "value/" + state.field.name + "?index=" + pos.join(","))
      .then((r) => r.json())
      .then((d) => { $("value").textContent = "value at (" + pos.join(", ") + "): " +
                     (d.value === null ? "NaN" : Number(d.value).toPrecision(6)); })
      .catch(() => {});
  }

  // Position in voxels of a mouse event over a slice image.
  function voxelAt(s, ev) {
    const rect = s.img.getBoundingClientRect(), f = state.field, [r, c] = others(s.axis);
    const fx = (ev.clientX - rect.left) / rect.width, fy = (ev.clientY - rect.top) / rect.height;
    if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return null;
    const pos = state.pos.slice();
    pos[r] = Math.min(f.shape[r] - 1, Math.floor(fy * f.shape[r]));
    pos[c] = Math.min(f.shape[c] - 1, Math.floor(fx * f.shape[c]));
    return pos;
  }

  let valueTimer = null;
  for (const s of slices) {
    s.img.addEventListener("mousedown", (ev) => {
      const pos = voxelAt(s, ev);
      if (pos) { state.pos = pos; updateSlices(s.axis); drawCross(s); showValue(pos); }
      ev.preventDefault();
    });
    s.img.addEventListener("mousemove", (ev) => {
      const pos = voxelAt(s, ev);
      if (!pos) return;
      clearTimeout(valueTimer);
      valueTimer = setTimeout(() => showValue(pos), 60);
    });
    s.panel.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const n = state.field.shape[s.axis];
      state.pos[s.axis] = Math.max(0, Math.min(n - 1, state.pos[s.axis] + (ev.deltaY > 0 ? 1 : -1)));
      slices[s.axis].load(base + "slice/" + state.field.name + ".png?" +
        q({ axis: s.axis, index: state.pos[s.axis], window: windowParam(), colormap: state.cmap }));
      for (const t of slices) drawCross(t);
      s.panel.querySelector(".title").textContent =
        "axis " + s.axis + " = " + state.pos[s.axis] + " / " + n;
    }, { passive: false });
  }

  let drag = null;
  dvrImg.addEventListener("mousedown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, az: state.azimuth, el: state.elevation };
    dvrImg.style.cursor = "grabbing";
    ev.preventDefault();
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    state.azimuth = drag.az - (ev.clientX - drag.x) * 0.5;
    state.elevation = Math.max(-89, Math.min(89, drag.el + (ev.clientY - drag.y) * 0.5));
    updateDvr(true);
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    drag = null;
    dvrImg.style.cursor = "grab";
    updateDvr(false);
  });
  $("dvr").addEventListener("wheel", (ev) => {
    ev.preventDefault();
    state.zoom = Math.max(0.25, Math.min(16, state.zoom * (ev.deltaY > 0 ? 0.9 : 1.1)));
    updateDvr(false);
  }, { passive: false });

  for (const id of ["lo", "hi"]) {
    $(id).addEventListener("change", () => {
      const lo = parseFloat($("lo").value), hi = parseFloat($("hi").value);
      if (isFinite(lo) && isFinite(hi) && lo < hi) {
        state.window = [lo, hi]; updateSlices(-1); updateDvr(false);
      } else status("window: give two numbers, low < high");
    });
  }
  $("cmap").addEventListener("change", () => { state.cmap = $("cmap").value; updateSlices(-1); updateDvr(false); });
  $("mode").addEventListener("change", () => { state.mode = $("mode").value; updateDvr(false); });
  $("field").addEventListener("change", () => select($("field").value));

  function select(name) {
    const f = fields.find((x) => x.name === name) || fields[0];
    state.field = f;
    state.pos = f.shape.map((n) => Math.floor(n / 2));
    state.window = f.window || [0, 1];
    $("lo").value = state.window[0]; $("hi").value = state.window[1];
    $("field").value = f.name;
    const zarrUrl = location.origin + base + f.urls.zarr;
    $("zarr").href = base + f.urls.zarr + "zarr.json";
    const ng = { layers: [{ type: "image", name: f.name, source: "zarr://" + zarrUrl }], layout: "4panel" };
    $("ng").href = "https://neuroglancer-demo.appspot.com/#!" + encodeURIComponent(JSON.stringify(ng));
    status(f.name + ": " + f.kind + ", " + f.dtype + " " + f.shape.join("×") + ", " +
           f.levels.length + " level(s)" + (f.notes.length ? "; " + f.notes.join("; ") : ""));
    history.replaceState(null, "", base + "view/" + f.name);
    updateSlices(-1);
    updateDvr(false);
  }

  fetch(base + "api/fields").then((r) => r.json()).then((d) => {
    fields = d.fields;
    for (const f of fields) {
      const o = document.createElement("option");
      o.textContent = f.name;
      $("field").appendChild(o);
    }
    select(VOXFIELD.field);
  }).catch((e) => status("could not list the fields: " + e));
})();
