#!/usr/bin/env bash
# Round 3 of training on one lent GPU, as one call of at most 10 minutes (docs/training.md
# sections 3 and 4). Run from the repository root; `tryon` must be importable (on the lent
# machine: wheels of segmentation-models-pytorch and kornia in .whl/), and .viton_pack/
# holds VITON training pairs (docs/scripts/pack_viton_subset.py; never commit it), or
# .viton_carry/viton_pack.tar.gz the same folder as one archive (what a device call carries:
# thousands of small files cost more than their bytes there).
#   OUT=folder bash docs/scripts/gpu_round3.sh [deadline-seconds, default 540]
# (DEVICE=cpu N=40 try it out on a CPU in a few minutes.)
# Four runs share the GPU:
#   viton_tom  the VITON TOM, from tryon/weights/viton, on the packed pairs (starts first)
# and on 10,000 fresh synthetic samples (seed 2000), from tryon/weights/synthetic:
#   parser     the human parser
#   gmm        the GMM, then tom: the TOM on that GMM's warps
#   gmm9       a GMM with a 9x9 control grid (the 5x5 one cannot bend sleeves), its
#              feature extractors taken from the bundled GMM, its regression head new
# Its one use (session 4) went wrong: `tryon synth` there made 15 samples/s, the data was
# not ready before the deadline and only viton_tom trained (docs/training.md section 3).
# Time `tryon synth --n 200` there first, or carry the data.
# Every run stops by time (--max-minutes), so all of them end before the deadline; each
# comes back as OUT/<run>.tar (weights, losses.csv, last sample grid); OUT/log.txt.
set -u
DEADLINE=${1:-540}
DEVICE=${DEVICE:-cuda}
N=${N:-10000}
OUT=${OUT:-/tmp/gpu_round3}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
source docs/scripts/device_env.sh

W=/tmp/round3; mkdir -p $W
VITON_DATA=.viton_pack
if [ -f .viton_carry/viton_pack.tar.gz ]; then
    tar -xzf .viton_carry/viton_pack.tar.gz -C $W && VITON_DATA=$W/viton_pack
fi
B=tryon/weights/synthetic
V=tryon/weights/viton
common=(--steps 1000000 --device $DEVICE --checkpoint-every 1000 --sample-every 2000 --seed 3)
minutes() { python3 -c "print(round($1 / 60, 2))"; }
tryon train tom "${common[@]}" --data $VITON_DATA --out $W/viton_tom --batch 16 --lr 4e-4 \
    --init $V/tom --gmm $V/gmm --workers 3 --max-minutes "$(minutes $(( DEADLINE - SECONDS - 45 )))" \
    > $W/viton_tom.log 2>&1 &
synthetic_runs() {
tryon synth --out $W/train --n "$N" --seed 2000 --workers "$(( $(nproc) - 2 ))" || return 1
echo "data ready at ${SECONDS}s"
python3 - "$W" <<'PY' || return 1
import sys
from tryon.models import GeometricMatcher
bundled = GeometricMatcher.from_pretrained("tryon/weights/synthetic/gmm")
config = {k: v for k, v in bundled.config.items() if not k.startswith("_")}
gmm9 = GeometricMatcher(**(config | {"grid_size": (9, 9)}))
shared = {k: v for k, v in bundled.state_dict().items() if not k.startswith("regressor.linear")}
missing, unexpected = gmm9.load_state_dict(shared, strict=False)
assert sorted(missing) == ["regressor.linear.bias", "regressor.linear.weight"], missing
gmm9.save_pretrained(f"{sys.argv[1]}/gmm9_init")
PY

left=$(( DEADLINE - SECONDS - 45 ))            # seconds of training left, 45 s for start-up and saving
common+=(--data $W/train)
tryon train parser "${common[@]}" --out $W/parser --batch 32 --lr 1e-3 --init $B/parser \
    --workers 4 --max-minutes "$(minutes $left)" > $W/parser.log 2>&1 &
tryon train gmm "${common[@]}" --out $W/gmm9 --batch 32 --lr 1e-3 --init $W/gmm9_init \
    --workers 3 --max-minutes "$(minutes $left)" > $W/gmm9.log 2>&1 &
(
    tryon train gmm "${common[@]}" --out $W/gmm --batch 32 --lr 1e-3 --init $B/gmm \
        --workers 3 --max-minutes "$(minutes $(( left * 35 / 100 )))" > $W/gmm.log 2>&1
    rest=$(( DEADLINE - SECONDS - 40 ))
    tryon train tom "${common[@]}" --out $W/tom --batch 16 --lr 4e-4 --init $B/tom --gmm $W/gmm/gmm \
        --workers 3 --max-minutes "$(minutes $rest)" > $W/tom.log 2>&1
) &
}
synthetic_runs || echo "synthetic runs did not start"
while [ "$(jobs -r | wc -l)" -gt 0 ] && [ $SECONDS -lt $(( DEADLINE - 10 )) ]; do
    sleep $(( DEADLINE - 10 - SECONDS < 30 ? DEADLINE - 10 - SECONDS : 30 ))
    echo "--- ${SECONDS}s"
    for run in parser gmm tom gmm9 viton_tom; do
        [ -f $W/$run/losses.csv ] && echo "$run: $(tail -1 $W/$run/losses.csv)"
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
done
pkill -f "tryon.cli" ; sleep 2
for run in parser gmm tom gmm9 viton_tom; do
    [ -d $W/$run ] || continue
    last=$(ls $W/$run/samples | tail -1)
    tar -cf "$OUT/$run.tar" -C $W/$run --exclude checkpoint.pt --exclude '*.tmp' --exclude samples . \
        -C $W/$run/samples "$last"
    tail -3 $W/$run.log
done
ls -la "$OUT"; echo "done at ${SECONDS}s"
