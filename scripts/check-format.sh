#!/usr/bin/env bash
# Checks the formatting CI enforces: `dotnet format` finds nothing to change (.editorconfig) and no C# line
# is longer than the editorconfig's max_line_length (140), which dotnet format does not check itself.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
dotnet format IlgpuDiffusion.sln --verify-no-changes || { echo "dotnet format: files above need formatting (run: dotnet format IlgpuDiffusion.sln)"; status=1; }
long=$(git ls-files '*.cs' | xargs awk 'length($0) > 140 { printf "%s:%d: %d characters\n", FILENAME, FNR, length($0) }')
if [ -n "$long" ]; then echo "$long"; echo "lines longer than 140 characters: $(echo "$long" | wc -l)"; status=1; fi
[ "$status" = 0 ] && echo "format check: clean"
exit "$status"
