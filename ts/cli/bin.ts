// The `edgegrad` executable (dist/cli.js): runs main() on process.argv. The first Ctrl-C asks
// training to stop after the current batch (it then saves the best weights and exits 130); a
// second one exits at once.

import { main } from "./main.js";

const controller = new AbortController();
process.on("SIGINT", () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write("\nedgegrad: stopping after the current batch (Ctrl-C again to quit now)\n");
  controller.abort();
});

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  signal: controller.signal,
});
