#!/usr/bin/env bash
# Builds and runs every test project (Release: the parity and model tests are compute-bound) and ends
# with one summary line "N passed, N failed, N skipped". GPU tests skip with a reason when no GPU is present.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet test IlgpuDiffusion.sln -c Release --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
sum() { grep -oE "$1: +[0-9]+" "$log" | grep -oE '[0-9]+' | paste -sd+ - | bc; }
passed=$(sum Passed); failed=$(sum Failed); skipped=$(sum Skipped)
rm -f "$log"
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
