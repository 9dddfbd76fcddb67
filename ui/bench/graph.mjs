// Browser side of bench/ui.py: headless Chromium against the app serving the UI.
// node bench/graph.mjs --url URL --token T --runs N [--layouts packed,forceatlas2]
//   [--diff-bodies DIR --diff-ids a,b,c]
// Prints one JSON line: per run, navigation -> first draw and -> laid out (ms), nodes, edges,
// the layout and whether it settled (false: ForceAtlas2's time budget ran out); the layouts
// alternate page load by page load, so both see the same machine; per diff sample, report
// POST -> the changed colour drawn (ms), with the first layout.
import fs from "node:fs";
import path from "node:path";
import { args, runInChromium } from "../e2e/harness.mjs";

const out = { ok: false, runs: [], diffs: [] };
const T = 180_000;
await runInChromium("ui-bench", out, async (ctx) => {
  await ctx.addInitScript((t) => sessionStorage.setItem("orchestrator.monitor.token", t), args.token);
  const runs = Number(args.runs ?? 3);
  const layouts = (args.layouts ?? "packed").split(",");
  let page;
  for (let r = 0; r < runs * layouts.length; r++) {
    const layout = layouts[r % layouts.length];
    if (page) await page.close();
    page = await ctx.newPage();
    await page.goto(`${args.url}/?view=containers${layout === "packed" ? "" : `&layout=${layout}`}`);
    await page.waitForFunction(() => window.__ui?.layoutDoneAt != null && window.__ui.nodes > 0, null, { timeout: T, polling: 50 });
    out.runs.push(await page.evaluate((layout) => ({
      layout,
      settled: window.__ui.settled ?? true,
      firstDrawMs: Math.round(window.__ui.firstDrawAt),
      laidOutMs: Math.round(window.__ui.layoutDoneAt),
      nodes: window.__ui.nodes,
      edges: window.__ui.edges,
      marks: Object.fromEntries(performance.getEntriesByType("mark").map((m) => [m.name, Math.round(m.startTime)])),
    }), layout));
  }
  if (args["diff-bodies"]) {
    // the diff samples with the first layout (the default)
    if (layouts.length > 1) {
      await page.close();
      page = await ctx.newPage();
      await page.goto(`${args.url}/?view=containers`);
      await page.waitForFunction(() => window.__ui?.layoutDoneAt != null && window.__ui.nodes > 0, null, { timeout: T, polling: 50 });
    }
    // let the page settle (no layout running), then change one container per sample
    await page.waitForTimeout(1000);
    const ids = args["diff-ids"].split(",");
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      const before = await page.evaluate((i) => window.__ui.colorOf(i), id);
      const body = fs.readFileSync(path.join(args["diff-bodies"], `${k}.json.gz`));
      const t0 = Date.now();
      const resp = await fetch(`${args.url}/api/report`, {
        method: "POST", body,
        headers: { Authorization: `Bearer ${args.token}`, "Content-Type": "application/json", "Content-Encoding": "gzip" },
      });
      if (!resp.ok) throw new Error(`report refused: ${resp.status} ${await resp.text()}`);
      const drawnAt = await page.waitForFunction(
        (a) => {
          const ui = window.__ui;
          return ui.colorOf(a.id) !== a.before && ui.lastRenderAt >= a.t0 ? ui.lastRenderAt : false;
        },
        { id, before, t0 }, { timeout: 30_000, polling: "raf" },
      );
      out.diffs.push({ id, ms: (await drawnAt.jsonValue()) - t0 });
      await page.waitForTimeout(300);
    }
  }
});
