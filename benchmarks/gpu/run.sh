#!/usr/bin/env bash
# The GPU benchmarks of issues #3 and #4, run on a lent machine by the device tool
# after benchmarks/gpu/prepare.sh (carry=[".gpu"]); logs go to $OUT:
#
#     bash benchmarks/gpu/run.sh throughput   # issue #3: NPID clips/s, ESResNet-50, bf16 (~3 min)
#     bash benchmarks/gpu/run.sh fig4         # issue #4: Fig. 4 at paper resolution (~10 min)
#
# SMOKE=1 runs both with tiny settings on any machine (a check of the script).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/sklaudio-gpu}
mkdir -p "$out"
if [ -d .gpu/whl ]; then
    export SKLAUDIO_ESC10=$PWD/.gpu/esc10
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # sklaudio from this checkout
if [ -d .gpu/whl ] && ! python3 -c "import skorch, soundfile, sklearn.frozen" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L >"$out/gpu.txt" 2>&1 || echo "no nvidia-smi" >"$out/gpu.txt"
what=${1:-throughput}
if [ "${SMOKE:-0}" = 1 ]; then
    tiny_npid=(--backbone esresnet_tiny --duration 0.5 --n-clips 96 --batch-size 32 --epochs 2 --steps 2)
    tiny_fig4=(--backbone esresnet_tiny --duration 0.5 --folds 1 --epochs 1 --pretrain-epochs 1)
else
    tiny_npid=() tiny_fig4=()
fi
case "$what" in
throughput)
    python3 benchmarks/npid_throughput.py "${tiny_npid[@]}" 2>&1 | tee "$out/npid_throughput.txt"
    python3 benchmarks/npid_throughput.py --fp32 "${tiny_npid[@]}" 2>&1 |
        tee "$out/npid_throughput_fp32.txt"
    ;;
fig4)
    python3 benchmarks/dls_fig4.py --dataset esc10 --backbone esresnet50 --features esresnet \
        --batch-size 32 --png "$out/dls_fig4_esc10_esresnet50.png" \
        --npid-model "$out/npid_esc10_esresnet50.pt" "${tiny_fig4[@]}" 2>&1 |
        tee "$out/dls_fig4_esresnet50.txt"
    ;;
*)
    echo "usage: run.sh throughput|fig4" >&2
    exit 2
    ;;
esac
