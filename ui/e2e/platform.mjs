// End-to-end run of the platform pages against a real app reading a real API server
// (driven by tests/e2e/test_ui_platform.py).
// Usage: node e2e/platform.mjs --url URL --token T --namespace NS --artifacts DIR
//          [--phase PHASE] [--broken-url URL] [--done MIGRATION]
// Prints one JSON line with what it saw; exits 1 on failure.
import fs from "node:fs";
import path from "node:path";
import { args, recorder, runInChromium } from "./harness.mjs";

const { out, step } = recorder("platform-e2e");
fs.mkdirSync(args.artifacts, { recursive: true });
const T = 30_000;
const shot = async (page, name) => {
  const file = path.join(args.artifacts, name);
  await page.screenshot({ path: file });
  out.screenshots.push(file);
};

// What a reader of the page sees of its text wrapping, in the tables under `root`: cells whose
// CSS lets a word break anywhere, and words (up to 40 characters; a longer token may break)
// that the browser did break over two lines.
const wrapping = (page, root) => page.evaluate((sel) => {
  const cells = [...document.querySelectorAll(`${sel} table td`)];
  const breakAll = cells.filter((td) => {
    const cs = getComputedStyle(td);
    return cs.wordBreak === "break-all" || cs.overflowWrap === "anywhere";
  }).map((td) => td.textContent);
  const broken = [];
  let words = 0;
  for (const td of cells) {
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const re = /\S+/g;
      let m;
      while ((m = re.exec(t.data))) {
        if (m[0].length > 40) continue;
        words++;
        const r = document.createRange();
        r.setStart(t, m.index);
        r.setEnd(t, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
        if (tops.size > 1) broken.push(m[0]);
      }
    }
  }
  return { cells: cells.length, words, breakAll, broken };
}, root);
await runInChromium("platform-e2e", out, async (browser) => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => step(`page error: ${e.message}`));
  let loads = 0;
  page.on("load", () => { loads += 1; });
  await page.goto(`${args.url}/?view=containers`);
  await page.fill("#token", args.token);
  await page.press("#token", "Enter");
  await page.waitForSelector('[data-page-link="mesosclusters"]', { timeout: T });
  const loadsAtStart = loads;

  // Mesos clusters: list, then the detail of the test's cluster (keyboard: focus the row, Enter)
  const cluster = `${args.namespace}/demo`;
  await page.click('[data-page-link="mesosclusters"]');
  await page.waitForSelector(`[data-item="${cluster}"]`, { timeout: T });
  // the page polls every 5 s: wait for the status the test wrote (another writer may race it)
  const badgeIs = (sel, text) => page.waitForFunction(
    (a) => document.querySelector(a.sel)?.textContent?.trim() === a.text, { sel, text }, { timeout: T },
  );
  if (args.phase) await badgeIs(`[data-item="${cluster}"] .badge`, args.phase);
  out.listPhase = (await page.locator(`[data-item="${cluster}"] .badge`).first().innerText()).trim();
  await page.focus(`[data-item="${cluster}"]`);
  await page.keyboard.press("Enter");
  const detail = `[data-detail="${cluster}"]`;
  await page.waitForSelector(detail, { timeout: T });
  if (args.phase) await badgeIs(`${detail} h2 .badge`, args.phase);
  out.cluster = {
    phase: (await page.locator(`${detail} h2 .badge`).innerText()).trim(),
    leadingMaster: (await page.locator(`${detail} [data-field="leadingMaster"]`).innerText()).trim(),
    conditions: await page.locator(`${detail} [data-condition]`).evaluateAll((rows) => rows.map((r) => r.innerText.replace(/\s+/g, " ").trim())),
    masters: (await page.locator(`${detail} [data-component="masters"]`).innerText()).replace(/\s+/g, " ").trim(),
    maintenance: (await page.locator(`${detail} [aria-label="maintenance"]`).innerText()).replace(/\s+/g, " ").trim(),
    // each component's colour (data-health and the badge's class) and the condition shown
    components: await page.locator(`${detail} [data-component]`).evaluateAll((rows) => Object.fromEntries(rows.map((r) => [
      r.dataset.component,
      { health: r.dataset.health, badge: r.querySelector(".badge")?.className ?? null, text: r.innerText.replace(/\s+/g, " ").trim() },
    ]))),
    conditionBadges: await page.locator(`${detail} [data-condition]`).evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.dataset.condition, r.querySelector(".badge")?.className]))),
    wrapping: await wrapping(page, detail),
  };
  await page.setViewportSize({ width: 1280, height: 1000 }); // the whole detail in the picture
  await shot(page, "platform-mesosclusters.png");
  await page.setViewportSize({ width: 1280, height: 800 });
  step(`cluster: ${JSON.stringify(out.cluster)}`);

  // ZooKeeper migrations: keyboard 7 opens the page, the row by keyboard, timeline and sync
  await page.keyboard.press("Escape");
  await page.locator("body").focus();
  await page.keyboard.press("7");
  const migration = `${args.namespace}/move-zk`;
  await page.waitForSelector(`[data-item="${migration}"]`, { timeout: T });
  await page.focus(`[data-item="${migration}"]`);
  await page.keyboard.press("Enter");
  const mdetail = `[data-detail="${migration}"]`;
  await page.waitForSelector(mdetail, { timeout: T });
  await page.waitForSelector(`${mdetail} [data-phase="2"][aria-current="step"]`, { timeout: T });
  // two polls: the lag chart has two samples
  await page.waitForSelector(`${mdetail} svg path`, { state: "attached", timeout: T });
  out.migration = {
    phases: await page.locator(`${mdetail} [data-phase]`).evaluateAll((rows) => rows.map((r) => r.querySelector(".badge")?.textContent)),
    current: await page.locator(`${mdetail} [aria-current="step"]`).getAttribute("data-phase"),
    lag: (await page.locator(`${mdetail} [data-field="lag"]`).innerText()).trim(),
    conflicts: (await page.locator(`${mdetail} [data-field="conflicts"]`).innerText()).trim(),
    differences: (await page.locator(`${mdetail} [data-field="differences"]`).innerText()).trim(),
  };
  // the sync engine's state (read from the migration's own route) beside the lag
  await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? "").includes("Running"), `${mdetail} [data-field="syncState"]`, { timeout: T });
  out.migration.syncState = (await page.locator(`${mdetail} [data-field="syncState"]`).innerText()).replace(/\s+/g, " ").trim();
  out.migration.syncStateBadge = await page.locator(`${mdetail} [data-field="syncState"] .badge`).getAttribute("class");
  out.migration.conditionBadges = await page.locator(`${mdetail} [data-condition]`).evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.dataset.condition, r.querySelector(".badge")?.className])));
  out.migration.wrapping = await wrapping(page, mdetail);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await shot(page, "platform-zkmigrations.png");

  // a migration that succeeded: no red badge for its Progressing False
  if (args.done) {
    const done = `${args.namespace}/${args.done}`;
    await page.click(`[data-item="${done}"]`);
    const ddetail = `[data-detail="${done}"]`;
    await page.waitForSelector(`${ddetail} [data-condition="Progressing"]`, { timeout: T });
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? "").includes("Stopped"), `${ddetail} [data-field="syncState"]`, { timeout: T });
    out.done = {
      phase: (await page.locator(`${ddetail} h2 .badge`).innerText()).trim(),
      phaseBadge: await page.locator(`${ddetail} h2 .badge`).getAttribute("class"),
      conditions: await page.locator(`${ddetail} [data-condition]`).evaluateAll((rows) => rows.map((r) => r.innerText.replace(/\s+/g, " ").trim())),
      conditionBadges: await page.locator(`${ddetail} [data-condition]`).evaluateAll((rows) => Object.fromEntries(rows.map((r) => [r.dataset.condition, r.querySelector(".badge")?.className]))),
      redBadges: await page.locator(`${ddetail} .badge.h-bad`).allInnerTexts(),
      syncState: (await page.locator(`${ddetail} [data-field="syncState"]`).innerText()).replace(/\s+/g, " ").trim(),
      lag: (await page.locator(`${ddetail} [data-field="lag"]`).innerText()).trim(),
    };
    await shot(page, "platform-zkmigration-succeeded.png");
    step(`succeeded migration: ${JSON.stringify(out.done)}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  step(`migration: ${JSON.stringify(out.migration)}`);

  // back to a topology view, and no page load happened on the way
  await page.click('[data-view="containers"]');
  await page.waitForSelector('[data-page]', { state: "detached", timeout: T });
  out.reloads = loads - loadsAtStart;

  // an app whose platform API fails: a visible error
  if (args["broken-url"]) {
    const p2 = await browser.newPage();
    await p2.goto(`${args["broken-url"]}/?view=hosts&page=mesosclusters`);
    await p2.fill("#token", args.token);
    await p2.press("#token", "Enter");
    await p2.waitForSelector("[data-platform-error]", { timeout: T });
    out.errorShown = (await p2.locator("[data-platform-error]").innerText()).trim();
    await shot(p2, "platform-error.png");
    await p2.close();
    step(`error: ${out.errorShown}`);
  }
});
