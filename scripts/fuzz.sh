#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60): HTML extraction, bounded image
# decoding, the SOCKS5 client against a hostile proxy, the fingerprint bank and journal
# parsers, and bus message decoding. Not part of CI (it rebuilds the crates with libFuzzer's
# instrumentation). Crashes land in fuzz/artifacts/<target>/; the corpus in fuzz/corpus/.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600 extract
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(extract image_decode socks5_reply bank bus_messages)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz passes -Z flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  echo "== $t ($secs s)"
  mkdir -p "corpus/$t"
  cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 2>&1 |
    grep -E "^(#[0-9]+ *DONE|INFO: Running|==[0-9]+==|SUMMARY|thread '|panicked|Done)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "!! $t: crashes in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "no crash in ${targets[*]}"
