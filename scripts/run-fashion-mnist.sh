#!/usr/bin/env bash
# The main job: sets up what is missing, then trains the autoencoder, encodes the training latents,
# trains the latent diffusion UNet, samples 1,000 images (DDIM) and measures them: FD-ResNet18 and KID
# against the Fashion-MNIST test images, next to the real-versus-real floor (1,000 training images
# against the same test images). Uses configs/fashion-mnist.json. Each run writes to a new folder
# (runs/<time> unless OUTPUT is set), so earlier results are never overwritten.
# Extra arguments go to every training stage, e.g. --device cuda or --set train_params:ldm_epochs=2
# (`evaluate` gets only --device). SAMPLES, DDIM_STEPS and SAMPLE_BATCH size the sampling.
# CONFIG=configs/fashion-mnist-class-cond.json runs the class-conditional variant (one grid row per class); it
# also trains the evaluation classifier and prints the share of samples classified as the class asked for.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dotnet >/dev/null; then
  echo "error: the .NET 10 SDK is needed (https://dot.net; on Debian: the dotnet-sdk-10.0 package from Microsoft's feed)" >&2
  exit 1
fi
data=/usr/share/datasets/fashion-mnist
if [ ! -d "$data" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "error: Fashion-MNIST not found at $data. Install it (sudo apt-get install dataset-fashion-mnist)," >&2
    echo "       or pass --set dataset_params:im_path=/folder/with/train-images-idx3-ubyte.gz" >&2
    exit 1
  fi
fi

dotnet build src/IlgpuDiffusion.Cli -c Release --nologo -v q
ildm() { dotnet src/IlgpuDiffusion.Cli/bin/Release/net10.0/ildm.dll "$@"; }
out=${OUTPUT:-runs/$(date +%Y%m%d-%H%M%S)}
config=${CONFIG:-configs/fashion-mnist.json}
task=$(sed -n 's/.*"task_name": *"\([^"]*\)".*/\1/p' "$config")
start=$(date +%s)
ildm train-autoencoder --config "$config" --output "$out" "$@"
ildm infer-autoencoder --config "$config" --output "$out" "$@"
ildm train-ldm --config "$config" --output "$out" "$@"
ildm sample --config "$config" --output "$out" --sampler ddim --steps "${DDIM_STEPS:-25}" \
  --count "${SAMPLES:-1000}" --batch-size "${SAMPLE_BATCH:-250}" "$@"
sampled=$(date +%s)
device=()
for ((i = 1; i < $#; i++)); do [ "${!i}" = --device ] && { j=$((i + 1)); device=(--device "${!j}"); }; done
ildm evaluate --real "$data" --fake "$out/$task" --fake "$data/train-images-idx3-ubyte.gz" \
  --count "${SAMPLES:-1000}" --json "$out/$task/evaluation.json" "${device[@]}"
if grep -q '"condition_types"' "$config"; then
  # class-conditional: which share of the samples a classifier trained on the same data sees as the class asked for
  ildm train-classifier --config "$config" --output "$out" "${device[@]}"
  ildm evaluate --real "$data" --fake "$out/$task" --features classifier --classifier "$out/$task" \
    --count "${SAMPLES:-1000}" --json "$out/$task/evaluation-classifier.json" "${device[@]}"
fi
end=$(date +%s)
echo "main job finished in $(( end - start )) s (evaluation $(( end - sampled )) s)"
echo "sample grid: $out/$task/samples/samples.png"
echo "the first line of evaluate: the samples; the second: 1,000 training images (the real-versus-real floor)"
