// End-to-end run of the MarathonApps page against a real app reading a real API server
// (driven by tests/e2e/test_ui_marathonapps.py).
// Usage: node e2e/marathonapps.mjs --url URL --token T --namespace NS --artifacts DIR
// Prints one JSON line with what it saw; exits 1 on failure.
import fs from "node:fs";
import path from "node:path";
import { args, recorder, runInChromium } from "./harness.mjs";

const { out, step } = recorder("marathonapps-e2e");
fs.mkdirSync(args.artifacts, { recursive: true });
const T = 30_000;
const shot = async (page, name) => {
  const file = path.join(args.artifacts, name);
  await page.screenshot({ path: file });
  out.screenshots.push(file);
};
const text = async (page, sel) => (await page.locator(sel).first().innerText()).replace(/\s+/g, " ").trim();
const cells = async (page, row) => page.locator(`${row} [data-field]`).evaluateAll((tds) => Object.fromEntries(
  tds.map((td) => [td.dataset.field, { text: td.innerText.replace(/\s+/g, " ").trim(), badge: td.querySelector(".badge")?.className ?? null }]),
));

await runInChromium("marathonapps-e2e", out, async (browser) => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => step(`page error: ${e.message}`));
  let loads = 0;
  page.on("load", () => { loads += 1; });
  await page.goto(`${args.url}/?view=containers`);
  await page.fill("#token", args.token);
  await page.press("#token", "Enter");
  await page.waitForSelector('[data-page-link="marathonapps"]', { timeout: T });
  const loadsAtStart = loads;

  // key 8 opens the page (no page load); the list shows each app of the test's namespace
  await page.locator("body").focus();
  await page.keyboard.press("8");
  const shop = `${args.namespace}/shop`;
  const worker = `${args.namespace}/worker`;
  const crashy = `${args.namespace}/crashy`;
  for (const k of [shop, worker, crashy]) await page.waitForSelector(`[data-item="${k}"]`, { timeout: T });
  // the page polls every 5 s: wait for the status the test wrote
  await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? "").includes("shop-canary"),
    `[data-item="${shop}"] [data-field="weights"]`, { timeout: T });
  out.list = {
    shop: await cells(page, `[data-item="${shop}"]`),
    worker: await cells(page, `[data-item="${worker}"]`),
    crashy: await cells(page, `[data-item="${crashy}"]`),
    headers: await page.locator('[data-page="marathonapps"] thead th').allInnerTexts(),
  };
  await shot(page, "platform-marathonapps.png");
  step(`list: ${JSON.stringify(out.list)}`);

  // the canary's detail by keyboard: weights, analysis, deployment steps, conditions
  await page.focus(`[data-item="${shop}"]`);
  await page.keyboard.press("Enter");
  const detail = `[data-detail="${shop}"]`;
  await page.waitForSelector(`${detail} [data-weight]`, { timeout: T });
  out.shop = {
    health: await text(page, `${detail} h2 .badge`),
    weights: await page.locator(`${detail} [data-weight]`).evaluateAll((rows) => rows.map((r) => r.innerText.replace(/\s+/g, " ").trim())),
    barWidths: await page.locator(`${detail} [data-weight] .wbar > span`).evaluateAll((bars) => bars.map((b) => b.style.width)),
    analysis: await page.locator(`${detail} [data-analysis]`).evaluateAll((rows) => rows.map((r) => r.innerText.replace(/\s+/g, " ").trim())),
    steps: await page.locator(`${detail} [data-field="deployment"] li`).evaluateAll((li) => li.map((l) => ({ text: l.innerText.trim(), current: l.getAttribute("aria-current") }))),
    instances: await text(page, `${detail} [data-field="instances"]`),
    rolloutPhase: await text(page, `${detail} [data-field="rolloutPhase"]`),
    conditions: await page.locator(`${detail} [data-condition]`).evaluateAll((rows) => rows.map((r) => r.innerText.replace(/\s+/g, " ").trim())),
  };
  await page.setViewportSize({ width: 1280, height: 1000 });
  await shot(page, "platform-marathonapp-canary.png");
  step(`shop: ${JSON.stringify(out.shop)}`);

  // the autoscaled worker: the autoscaler's decision and metric
  await page.click(`[data-item="${worker}"]`);
  const wdetail = `[data-detail="${worker}"]`;
  await page.waitForSelector(`${wdetail} [data-field="reason"]`, { timeout: T });
  out.worker = {
    desired: await text(page, `${wdetail} [data-field="desired"]`),
    reason: await text(page, `${wdetail} [data-field="reason"]`),
    metric: await text(page, `${wdetail} [aria-label="autoscaling"]`),
  };
  await shot(page, "platform-marathonapp-autoscaled.png");
  await page.setViewportSize({ width: 1280, height: 800 });
  step(`worker: ${JSON.stringify(out.worker)}`);

  // Esc closes the detail; a topology button goes back; no page load on the way
  await page.keyboard.press("Escape");
  await page.waitForSelector(wdetail, { state: "detached", timeout: T });
  await page.click('[data-view="containers"]');
  await page.waitForSelector("[data-page]", { state: "detached", timeout: T });
  out.reloads = loads - loadsAtStart;
});
