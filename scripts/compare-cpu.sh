#!/usr/bin/env bash
# Measures ildm's managed cpu executor and PyTorch on the same models, side by side on this machine, and prints per
# step both medians (over rounds), ours/PyTorch, and both peak memories.
#
#   scripts/compare-cpu.sh [--rounds N] [--config mnist|celebhq|all] [--warmup N] [--runs N] [--min-seconds S]
#
# Installs what it lacks (as root, Debian: python3-torch, libopenblas0-pthread), selects OpenBLAS as libblas.so.3
# and prints which BLAS the PyTorch process loaded, builds ildm (Release), then runs
# `scripts/torch_reference_bench.py --device cpu --threads 2` and `ildm bench --device cpu --suite models` in turn,
# N rounds each (default 3); --config, --warmup, --runs and --min-seconds go to both benches (see their --help).
# Peak memory is, on both sides, the process's peak resident memory during a step's timed runs above what it held
# before the step built its modules (free memory handed back to the system first); ours also shows the allocator's
# peak (tensor bytes in use). The largest over the rounds is shown.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 config=all bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --warmup|--runs|--min-seconds) bench_args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-cpu.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
python=/usr/bin/python3  # Debian's, which python3-torch installs into

# PyTorch and OpenBLAS from Debian's packages
missing=()
"$python" -c 'import torch' 2>/dev/null || missing+=(python3-torch)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || missing+=(libopenblas0-pthread)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
# libblas.so.3 is an alternative (named libblas.so.3-<multiarch> on current Debian): the netlib reference BLAS makes
# PyTorch's matrix products ~30x slower than OpenBLAS
blas=$(update-alternatives --get-selections | awk '$1 ~ /^libblas\.so\.3/ { print $1; exit }')
openblas=$(update-alternatives --list "$blas" | grep -m1 openblas)
if [ "$(update-alternatives --query "$blas" | awk '$1 == "Value:" { print $2 }')" != "$openblas" ]; then
  update-alternatives --set "$blas" "$openblas"
fi

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
echo "$blas -> $(readlink -f "$(update-alternatives --query "$blas" | awk '$1 == "Link:" { print $2 }')")"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)} (left as they are)"
"$python" -c 'import re, torch; print(re.sub(r"CXX_FLAGS=[^,]*, ", "", torch.__config__.show()).strip())'

echo "== building ildm (Release)"
dotnet build src/IlgpuDiffusion.Cli -c Release -nologo -v q | grep -E 'error|warn' || true
ildm=$(dotnet msbuild src/IlgpuDiffusion.Cli -getProperty:TargetPath -p:Configuration=Release)
ildm=${ildm%.dll}

out=$(mktemp -d -t compare-cpu.XXXXXX)
start=$SECONDS
for round in $(seq 1 "$rounds"); do
  echo "== round $round/$rounds: PyTorch"
  "$python" scripts/torch_reference_bench.py --device cpu --threads 2 --config "$config" "${bench_args[@]}" \
    --json "$out/torch-$round.json"
  echo "== round $round/$rounds: ildm"
  "$ildm" bench --device cpu --suite models --config "$config" "${bench_args[@]}" --json "$out/ildm-$round.json"
done
echo "== $rounds rounds in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s; results in $out"

"$python" - "$out" "$rounds" <<'EOF'
import json, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])
def steps(system):
    by_step = {}
    for r in range(1, rounds + 1):
        with open('%s/%s-%d.json' % (out, system, r)) as f:
            for s in json.load(f)['steps']:
                by_step.setdefault((s['config'], s['step']), []).append(s)
    return by_step
def mib(values):
    values = [v for v in values if v is not None]
    return max(values) / 2 ** 20 if values else float('nan')

torch, ours = steps('torch'), steps('ildm')
print('%-44s %11s %11s %7s   %12s %17s %7s' % ('step (median of %d rounds; peak: largest)' % rounds, 'PyTorch ms', 'ours ms',
                                              'ratio', 'PyTorch MiB', 'ours MiB (alloc)', 'ratio'))
for key in [k for k in torch if k in ours]:
    t, o = torch[key], ours[key]
    t_ms, o_ms = statistics.median(s['median_ms'] for s in t), statistics.median(s['median_ms'] for s in o)
    t_mib, o_mib = mib(s['process_peak_bytes'] for s in t), mib(s['process_peak_bytes'] for s in o)
    o_alloc = mib(s['allocator_peak_bytes'] for s in o)
    print('%-44s %11.1f %11.1f %7.2f   %12.0f %10.0f (%4.0f) %7.2f' % (
        '%s %s b%d' % (key[0], key[1], t[0]['batch']), t_ms, o_ms, o_ms / t_ms, t_mib, o_mib, o_alloc, o_mib / t_mib))
print('ratio = ours/PyTorch (<= 1: ours is as fast or as small); the memory ratio compares process peaks, both measured'
      ' alike;\n(alloc) = our allocator\'s peak of tensor bytes in use, for reference')
EOF
