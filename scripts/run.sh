#!/usr/bin/env bash
# The README's two commands. Each sets up what is missing (npm packages, the wasm toolchain and
# build, the JS bundle) and then runs:
#   bash scripts/run.sh demo   train an MLP on iris and report held-out accuracy
#   bash scripts/run.sh test   cargo test for the crates, then the vitest suite
#   bash scripts/run.sh bench  the benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

setup() {
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "setup: npm ci" >&2
    npm ci --no-audit --no-fund
  fi
  bash scripts/build-wasm.sh
  echo "setup: bundling TypeScript" >&2
  npm run --silent build:ts
}

# The browser tests drive Debian's chromium (test/runtimes) and the interop tests run Debian's
# PyTorch (test/interop); install them when apt can.
ensure_test_packages() {
  local missing=()
  [[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]] || missing+=(chromium)
  /usr/bin/python3 -c "import torch" >/dev/null 2>&1 || missing+=(python3-torch)
  if [[ ${#missing[@]} == 0 ]]; then return; fi
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "setup: installing Debian packages for the tests: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install them (apt-get install ${missing[*]}) to run every test" >&2
    exit 1
  fi
}

# Host cargo for the crates' native tests: rustup's when present, else Debian's.
host_cargo() {
  if command -v cargo >/dev/null 2>&1; then cargo "$@"; else /usr/bin/cargo "$@"; fi
}

cmd="${1:-}"
case "$cmd" in
  demo)
    setup
    node examples/iris.mjs
    ;;
  test)
    setup
    ensure_test_packages
    host_cargo test --workspace --locked --release
    mkdir -p build
    status=0
    npx tsc --noEmit
    echo "test: API reference (TypeDoc, warnings are errors)" >&2
    npx typedoc --logLevel Warn
    npx vitest run --reporter=default --reporter=json --outputFile=build/vitest.json || status=$?
    # One summary line in the plain form CI reads: "N passed, N failed".
    node -e '
      const r = JSON.parse(require("fs").readFileSync("build/vitest.json", "utf8"));
      console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);'
    exit "$status"
    ;;
  bench)
    setup
    shift
    node bench/run.mjs "$@"
    ;;
  *)
    echo "usage: bash scripts/run.sh demo|test|bench" >&2
    exit 2
    ;;
esac
