#!/usr/bin/env bash
# The main job: sets up what is missing, then trains the autoencoder, encodes the training latents,
# trains the latent diffusion UNet, samples 1,000 images (DDIM) and measures them: FD-ResNet18 and KID
# against the Fashion-MNIST test images, next to the real-versus-real floor (1,000 training images
# against the same test images). Uses configs/fashion-mnist.json. Each run writes to a new folder
# (runs/<time> unless OUTPUT is set), so earlier results are never overwritten.
# Arguments before the first stage marker go to the four pipeline stages, e.g. --device cuda or
# --set train_params:ldm_epochs=2 (`evaluate` gets only --device); those after a marker `STAGE:`
# (train-autoencoder:, infer-autoencoder:, train-ldm:, sample:, evaluate:) go to that stage alone, e.g.
#   ./scripts/run-fashion-mnist.sh --device cuda sample: --sampler ddpm train-ldm: --set train_params:ldm_epochs=8
# SAMPLES, DDIM_STEPS and SAMPLE_BATCH size the sampling (options given after `sample:` take their place); the grid
# of the first num_samples is drawn 3 times larger.
# CONFIG=configs/fashion-mnist-class-cond.json runs the class-conditional variant (one grid row per class); it
# also trains the evaluation classifier and prints the share of samples classified as the class asked for.
# DRY_RUN=1 prints the ildm commands instead of setting up, building and running them.
set -euo pipefail
cd "$(dirname "$0")/.."

common=() train_autoencoder=() infer_autoencoder=() train_ldm=() sample=() evaluate=()
target=common
for arg in "$@"; do
  case "$arg" in
    train-autoencoder: | infer-autoencoder: | train-ldm: | sample: | evaluate:) target=${arg%:}; target=${target//-/_} ;;
    *) eval "$target+=(\"\$arg\")" ;;
  esac
done
# whether option $1 is among the remaining arguments
has() { local option=$1; shift; for a in "$@"; do [ "$a" = "$option" ] && return 0; done; return 1; }
# the value after option $1 among the remaining arguments (empty when absent)
value() { local option=$1; shift; while [ $# -gt 1 ]; do [ "$1" = "$option" ] && { echo "$2"; return; }; shift; done; }

if ! command -v dotnet >/dev/null; then
  echo "error: the .NET 10 SDK is needed (https://dot.net; on Debian: the dotnet-sdk-10.0 package from Microsoft's feed)" >&2
  exit 1
fi
data=/usr/share/datasets/fashion-mnist
if [ ! -d "$data" ] && [ -z "${DRY_RUN:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "error: Fashion-MNIST not found at $data. Install it (sudo apt-get install dataset-fashion-mnist)," >&2
    echo "       or pass --set dataset_params:im_path=/folder/with/train-images-idx3-ubyte.gz" >&2
    exit 1
  fi
fi

if [ -n "${DRY_RUN:-}" ]; then
  ildm() { echo "ildm $*"; }
else
  dotnet build src/IlgpuDiffusion.Cli -c Release --nologo -v q
  ildm() { dotnet src/IlgpuDiffusion.Cli/bin/Release/net10.0/ildm.dll "$@"; }
fi
out=${OUTPUT:-runs/$(date +%Y%m%d-%H%M%S)}
config=${CONFIG:-configs/fashion-mnist.json}
task=$(sed -n 's/.*"task_name": *"\([^"]*\)".*/\1/p' "$config")
start=$(date +%s)
ildm train-autoencoder --config "$config" --output "$out" "${common[@]}" "${train_autoencoder[@]}"
# the reconstructions' FD-ResNet18 (the floor for samples) costs 2,000 images through ResNet18: FLOOR=1 measures it
inferring=()
has --feature-count "${infer_autoencoder[@]}" || [ -n "${FLOOR:-}" ] || inferring+=(--feature-count 0)
ildm infer-autoencoder --config "$config" --output "$out" "${inferring[@]}" "${common[@]}" "${infer_autoencoder[@]}"
ildm train-ldm --config "$config" --output "$out" "${common[@]}" "${train_ldm[@]}"
# the job's sampling defaults, each unless the sample: arguments give it (--steps only for DDIM)
sampling=()
has --sampler "${sample[@]}" || sampling+=(--sampler ddim)
sampler=$(value --sampler "${sample[@]}")
[ "${sampler:-ddim}" = ddim ] && ! has --steps "${sample[@]}" && sampling+=(--steps "${DDIM_STEPS:-25}")
count=$(value --count "${sample[@]}")
has --count "${sample[@]}" || sampling+=(--count "${SAMPLES:-1000}")
has --batch-size "${sample[@]}" || sampling+=(--batch-size "${SAMPLE_BATCH:-250}")
has --grid-scale "${sample[@]}" || sampling+=(--grid-scale 3)
ildm sample --config "$config" --output "$out" "${sampling[@]}" "${common[@]}" "${sample[@]}"
sampled=$(date +%s)
device=() # evaluate takes --device from the common arguments unless its own give one
d=$(value --device "${common[@]}")
[ -n "$d" ] && ! has --device "${evaluate[@]}" && device=(--device "$d")
ildm evaluate --real "$data" --fake "$out/$task" --fake "$data/train-images-idx3-ubyte.gz" \
  --count "${count:-${SAMPLES:-1000}}" --json "$out/$task/evaluation.json" "${device[@]}" "${evaluate[@]}"
if grep -q '"condition_types"' "$config"; then
  # class-conditional: which share of the samples a classifier trained on the same data sees as the class asked for
  ildm train-classifier --config "$config" --output "$out" "${device[@]}"
  ildm evaluate --real "$data" --fake "$out/$task" --features classifier --classifier "$out/$task" \
    --count "${count:-${SAMPLES:-1000}}" --json "$out/$task/evaluation-classifier.json" "${device[@]}"
fi
end=$(date +%s)
echo "main job finished in $(( end - start )) s (evaluation $(( end - sampled )) s)"
echo "sample grid: $out/$task/samples/samples.png"
echo "the first line of evaluate: the samples; the second: 1,000 training images (the real-versus-real floor)"
