// What the browser e2e scripts share: their --name value arguments, the record of steps they
// print as one JSON line, and a headless Chromium with a fresh profile around their body.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);

export function recorder(tag) {
  const out = { ok: false, steps: [], screenshots: [] };
  const step = (s) => {
    out.steps.push(s);
    process.stderr.write(`[${tag}] ${s}\n`);
  };
  return { out, step };
}

// Runs body(browser), prints `out` as one JSON line and exits 1 unless the body finished.
export async function runInChromium(tag, out, body) {
  // a fresh profile directory (Playwright passes it as --user-data-dir)
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-chromium-`));
  const browser = await chromium.launchPersistentContext(userDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    await body(browser);
    out.ok = true;
  } catch (e) {
    out.error = String(e?.stack ?? e);
  } finally {
    await browser.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}
