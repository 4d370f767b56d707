import { defineConfig } from "vitest/config";

export default defineConfig({
  // Node 20 has no native `using`; let esbuild lower it (and anything newer than ES2022).
  esbuild: { target: "es2022" },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // --expose-gc lets test/memory.test.ts drive the FinalizationRegistry leak backstop.
    poolOptions: { forks: { execArgv: ["--expose-gc"] } },
  },
});
