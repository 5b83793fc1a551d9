// The viewer page of `voxfield serve`, in Debian's chromium (headless, driven by
// playwright-core): it loads a real brain (nibabel's anatomical.nii, 33x41x25),
// shows three slices and a server-rendered volume, orbits on drag, and reports
// the value under a click. Run by scripts/test; exits non-zero on any failure.
//
//   node tests/browser/viewer.test.mjs CLI VOLUME
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [cli, volume] = process.argv.slice(2);
if (!cli || !volume) {
  console.error("usage: node viewer.test.mjs CLI VOLUME");
  process.exit(2);
}
const fail = (msg) => { console.error("browser test: FAILED: " + msg); process.exitCode = 1; };
const check = (ok, msg) => { if (!ok) fail(msg); else console.log("browser test: ok: " + msg); };

const server = spawn(cli, ["serve", volume, "--name", "brain=" + volume, "--port", "0"],
                     { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
    const m = out.match(/serving (http:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  server.on("exit", (code) => reject(new Error("voxfield serve exited with " + code)));
  setTimeout(() => reject(new Error("voxfield serve printed no URL within 30 s")), 30000);
});

const profile = mkdtempSync(join(tmpdir(), "voxfield-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1000, height: 800 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(r.status() + " " + r.url()); });
  page.on("request", (r) => { if (!r.url().startsWith(url)) errors.push("request off the server: " + r.url()); });
  await page.goto(url + "view/brain");

  // Waits until every panel's picture has loaded; returns per-picture statistics
  // computed in a 2-D canvas (no WebGL): size, non-black fraction, a checksum.
  const pictures = async () => {
    await page.waitForFunction(() => [...document.querySelectorAll(".panel img")]
      .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 60000 });
    return page.evaluate(() => [...document.querySelectorAll(".panel img")].map((img) => {
      const c = document.createElement("canvas");
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let lit = 0, sum = 0, s1 = 0, s2 = 0;
      const levels = new Set();
      for (let i = 0; i < d.length; i += 4) {
        const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
        if (y > 10) lit++;
        s1 += y; s2 += y * y;
        levels.add(d[i]);
        sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
      }
      const n = d.length / 4, mean = s1 / n;
      return { w: c.width, h: c.height, lit: lit / n, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)),
               levels: levels.size, sum, src: img.src };
    }));
  };

  const before = await pictures();
  check(before[0].w === 25 && before[0].h === 41, `axis-0 slice is 41x25 voxels (got ${before[0].h}x${before[0].w})`);
  for (const [i, p] of before.entries()) {
    // A picture of anatomy, not a blank or a flat field: lit, with contrast and many grey levels.
    check(p.lit > 0.05 && p.std > 15 && p.levels >= 24,
          `panel ${i} shows a brain (${(100 * p.lit).toFixed(1)} % lit, contrast ${p.std.toFixed(1)}, ${p.levels} levels)`);
  }
  const shot = await page.screenshot();
  if (process.env.VOXFIELD_SCREENSHOT) writeFileSync(process.env.VOXFIELD_SCREENSHOT, shot);
  check(shot.length > 10000, `the page screenshot holds a picture (${shot.length} bytes)`);

  // Drag across the rendered panel: the camera orbits, a new picture arrives.
  const box = await page.locator("#dvr img").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let k = 1; k <= 10; k++) {
    await page.mouse.move(box.x + box.width / 2 + 12 * k, box.y + box.height / 2 + 3 * k);
  }
  await page.mouse.up();
  await page.waitForFunction((old) => {
    const i = document.querySelector("#dvr img");
    return i.src !== old && i.src.includes("size=") && !i.src.includes("256x256") && i.complete;
  }, before[3].src, { timeout: 60000 });
  const after = await pictures();
  check(/azimuth=-?\d/.test(after[3].src) && after[3].src !== before[3].src, "dragging asked for a new camera");
  check(after[3].sum !== before[3].sum && after[3].lit > 0.02, "the orbited rendering differs and is not blank");

  // A click on a slice moves the crosshair and shows the voxel's value.
  const s0 = await page.locator("#p0 img").boundingBox();
  await page.mouse.click(s0.x + s0.width * 0.5, s0.y + s0.height * 0.5);
  await page.waitForFunction(() => document.getElementById("value").textContent.startsWith("value at"),
                             null, { timeout: 30000 });
  const value = await page.locator("#value").textContent();
  check(/value at \(16, 20, 12\): -?\d/.test(value), `the value under the click is shown (${value})`);
  const ng = await page.locator("#ng").getAttribute("href");
  check(ng.includes(encodeURIComponent("zarr://" + url)), "the Neuroglancer link points at this server's Zarr view");
  check(errors.length === 0, "no page errors, failed or off-server requests" + (errors.length ? ": " + errors.join("; ") : ""));
} catch (e) {
  fail(String(e && e.stack || e));
} finally {
  await context.close();
  server.kill("SIGINT");
  rmSync(profile, { recursive: true, force: true });
}
