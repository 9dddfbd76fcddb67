// End-to-end run of the UI against a real monitoring app (driven by tests/e2e/test_ui.py).
// Usage: node e2e/ui.mjs --url URL --token T --read-only-token R --container ID
//          --artifacts DIR [--app-pid PID]
// Prints one JSON line with what it saw; exits 1 on failure.
import fs from "node:fs";
import path from "node:path";
import { args, recorder, runInChromium } from "./harness.mjs";

const { out, step } = recorder("ui-e2e");
const artifacts = args.artifacts;
fs.mkdirSync(artifacts, { recursive: true });
const T = 30_000;
await runInChromium("ui-e2e", out, async (browser) => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => step(`page error: ${e.message}`));
  const signIn = async (token) => {
    await page.goto(`${args.url}/?view=containers`);
    await page.fill("#token", token);
    await page.press("#token", "Enter");
    await page.waitForSelector('[data-conn="live"]', { timeout: T });
  };

  // 1. a wrong token is refused with a message
  await page.goto(`${args.url}/`);
  await page.fill("#token", "wrong-token");
  await page.press("#token", "Enter");
  await page.waitForSelector('[role="alert"]', { timeout: T });
  step("wrong token refused");

  // 2. read-only token: the container is visible, controls are hidden
  const cid = `container:${args.container}`;
  const item = `[data-node="${cid}"]`;
  await signIn(args["read-only-token"]);
  await page.waitForSelector(item, { timeout: T });
  await page.click(item);
  await page.waitForSelector(".panel", { timeout: T });
  const roControls = await page.locator("[data-control]").count();
  if (roControls !== 0) throw new Error(`read-only token shows ${roControls} controls`);
  out.readOnlyControls = roControls;
  step("read-only: controls hidden");
  await page.click("text=sign out");

  // 3. read-write token; each view, with a screenshot
  await signIn(args.token);
  out.views = {};
  out.empty = {};
  for (const view of ["hosts", "containers", "processes", "pods", "services"]) {
    await page.keyboard.press("Escape");
    await page.click(`[data-view="${view}"]`);
    await page.waitForFunction((v) => new URL(location.href).searchParams.get("view") === v, view, { timeout: T });
    await page.waitForSelector('[data-conn="live"]', { timeout: T });
    if (view === "hosts" || view === "containers" || view === "processes") {
      // laid out and drawn since, with its labels
      await page.waitForFunction(() => (window.__ui?.nodes ?? 0) > 0 && window.__ui?.layoutDoneAt != null
        && window.__ui.lastRenderAt > 0 && window.__ui.labelsDrawn > 0, null, { timeout: T });
    } else {
      // the probe runs without --kubernetes: the view says it is empty, and why
      const empty = `[data-empty="${view}"]`;
      await page.waitForSelector(empty, { state: "visible", timeout: T });
      out.empty[view] = (await page.locator(empty).innerText()).replace(/\s+/g, " ").trim();
    }
    // the labels drawn in the last frame: how many, and how many pairs of them overlap
    out.views[view] = await page.evaluate(() => {
      const ui = window.__ui;
      const b = ui?.labelBoxes() ?? [];
      let overlaps = 0;
      for (let i = 0; i < b.length; i++) {
        for (let j = i + 1; j < b.length; j++) {
          if (b[i][0] < b[j][2] && b[j][0] < b[i][2] && b[i][1] < b[j][3] && b[j][1] < b[i][3]) overlaps++;
        }
      }
      return { nodes: ui?.nodes ?? 0, edges: ui?.edges ?? 0, labels: b.length, overlaps };
    });
    const file = path.join(artifacts, `${view}.png`);
    await page.screenshot({ path: file });
    out.screenshots.push(file);
  }
  step(`views: ${JSON.stringify(out.views)}`);

  // grouping (key g): containers collapse to one node per image
  await page.click('[data-view="containers"]');
  await page.waitForFunction(() => (window.__ui?.nodes ?? 0) > 0, null, { timeout: T });
  await page.keyboard.press("g");
  await page.waitForFunction(() => new URL(location.href).searchParams.get("group") === "1", null, { timeout: T });
  out.grouped = await page.evaluate(() => ({ nodes: window.__ui.nodes }));
  await page.screenshot({ path: path.join(artifacts, "containers-grouped.png") });
  await page.keyboard.press("g");
  await page.waitForFunction(() => !new URL(location.href).searchParams.has("group"), null, { timeout: T });
  step(`grouped: ${JSON.stringify(out.grouped)}`);

  // 4. the container the test started is in the graph; stop it from the panel
  await page.click('[data-view="containers"]');
  await page.waitForFunction((id) => window.__ui?.hasNode(id), cid, { timeout: T });
  out.containerInGraph = true;
  await page.click(item);
  await page.waitForSelector('.panel [data-control="stop"]', { timeout: T });
  out.colourBefore = await page.evaluate((id) => window.__ui.colorOf(id), cid);
  // live-following logs
  await page.check('.panel input[type="checkbox"]');
  await page.waitForSelector('.logs:has-text("ui-e2e-started")', { timeout: T });
  out.logsShown = true;
  await page.uncheck('.panel input[type="checkbox"]');
  step("logs followed");
  await page.screenshot({ path: path.join(artifacts, "container-panel.png") });
  // keyboard: focus the stop button, Enter opens the confirmation, Enter confirms
  await page.focus('.panel [data-control="stop"]');
  await page.keyboard.press("Enter");
  await page.waitForSelector('[role="alertdialog"]', { timeout: T });
  await page.screenshot({ path: path.join(artifacts, "confirm-stop.png") });
  await page.keyboard.press("Enter"); // the confirm button has the focus
  await page.waitForSelector('.panel [role="status"]:has-text("stop: done")', { timeout: 60_000 });
  step("stopped from the panel");
  // the new state reaches the graph through the WebSocket
  await page.waitForFunction(
    (a) => window.__ui.colorOf(a.id) !== a.before, { id: cid, before: out.colourBefore }, { timeout: T },
  );
  out.colourAfter = await page.evaluate((id) => window.__ui.colorOf(id), cid);
  out.stateShown = await page.locator(`${item} .muted`).innerText();
  step(`state in the UI: ${out.stateShown}`);

  // 5. search + filters are in the URL
  await page.fill("#search", "zzz-nothing");
  await page.press("#search", "Enter");
  await page.waitForFunction(() => new URL(location.href).searchParams.get("q") === "zzz-nothing", null, { timeout: T });
  out.sharedUrl = page.url();
  const page2 = await browser.newPage();
  await page2.goto(out.sharedUrl);
  await page2.fill("#token", args.token);
  await page2.press("#token", "Enter");
  await page2.waitForSelector('[data-conn="live"]', { timeout: T });
  out.sharedSearch = await page2.inputValue("#search");
  await page2.close();
  await page.fill("#search", "");
  await page.press("#search", "Enter");
  step("search kept in the URL");

  // 6. the app goes away: a visible unreachable state
  if (args["app-pid"]) {
    process.kill(Number(args["app-pid"]), "SIGTERM");
    await page.waitForSelector("[data-unreachable]", { timeout: T });
    await page.screenshot({ path: path.join(artifacts, "unreachable.png") });
    out.unreachableShown = true;
    step("unreachable banner shown");
  }
});
