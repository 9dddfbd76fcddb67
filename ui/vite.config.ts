import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Built assets go to ui/dist and are served by the monitoring app (ui_assets.add_ui_routes).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:4040", ws: true } } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
