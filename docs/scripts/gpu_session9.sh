#!/usr/bin/env bash
# Session 9's training on one lent GPU, as one call of at most 10 minutes (docs/training.md
# section 3, round 8, and section 4). Run from the repository root; `tryon` must be
# importable (on the lent machine: wheels of segmentation-models-pytorch, kornia and
# kornia-rs in .whl/), and .viton_carry/viton_pack.tar.gz must hold .viton_pack/train and
# .viton_pack/val (docs/scripts/pack_viton_subset.py; git-ignored, never committed).
#   OUT=folder bash docs/scripts/gpu_session9.sh [deadline-seconds, default 520]
# Try it on a CPU first: DEVICE=cpu N=60 GEN_CUTOFF=20 VAL_EVERY=5 VAL_SIZE=8 bash ... 120
#
# Four runs share the GPU; every one stops by time (--max-minutes) before the deadline
# and keeps its best held-out step in RUN/best/:
#   viton_tom     the VITON TOM, from tryon/weights/viton, on the packed pairs
#   viton_parser  the VITON parser at full resolution (--input-scale 1), likewise
# and, on synthetic samples made on the device while those two start (seed 2000, the
# samples finished by GEN_CUTOFF seconds; round 3 saw generation there run slowly):
#   syn_parser    the synthetic parser at full resolution
#   syn_tom       the synthetic TOM on the bundled GMM's warps
# Each run comes back as OUT/<run>.tar (best weights, validation.csv, losses.csv).
# Its use (session 9, docs/training.md): a first call with tiny settings (N=600
# GEN_CUTOFF=30 VAL_EVERY=25, deadline 80) checked the CUDA paths and timed generation
# (99 samples/s from 10 processes); the full call ran 529 s with GEN_CUTOFF=130, deadline 560.
set -u
DEADLINE=${1:-520}
DEVICE=${DEVICE:-cuda}
N=${N:-10000}
GEN_CUTOFF=${GEN_CUTOFF:-180}
VAL_EVERY=${VAL_EVERY:-250}
VAL_SIZE=${VAL_SIZE:-96}
OUT=${OUT:-/tmp/gpu_session9}
# A fresh work folder each time: a machine kept warm between calls still holds the last
# call's runs, and `tryon train` refuses to start over a run.
W=${WORK:-$(mktemp -d /tmp/session9.XXXXXX)}
if [ -n "$(ls -A "$W" 2>/dev/null)" ]; then echo "WORK=$W is not empty; name a new folder"; exit 1; fi
mkdir -p "$OUT" "$W"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
source docs/scripts/device_env.sh

tar -xzf .viton_carry/viton_pack.tar.gz -C "$W" || exit 1
V=$W/.viton_pack
B=tryon/weights/synthetic
R=tryon/weights/viton
minutes_left() { python3 -c "print(round(max($DEADLINE - $SECONDS - 50, 15) / 60, 2))"; }
common=(--steps 1000000 --device "$DEVICE" --checkpoint-every 1000 --sample-every 1000000
    --val-every "$VAL_EVERY" --val-size "$VAL_SIZE")
tom_loss=(--adversarial-weight 0 --feature-weight 0 --ssim-weight 3)

tryon train tom "${common[@]}" "${tom_loss[@]}" --data "$V/train" --val-data "$V/val" \
    --out "$W/viton_tom" --batch 16 --lr 1e-4 --init $R/tom --gmm $R/gmm --workers 3 \
    --seed 109 --max-minutes "$(minutes_left)" > "$W/viton_tom.log" 2>&1 &
tryon train parser "${common[@]}" --data "$V/train" --val-data "$V/val" \
    --out "$W/viton_parser" --batch 32 --lr 1e-3 --input-scale 1 --init $R/parser --workers 3 \
    --seed 113 --max-minutes "$(minutes_left)" > "$W/viton_parser.log" 2>&1 &

synthetic_runs() {
    tryon synth --out "$W/val" --n 96 --seed 800001 --workers 8 > "$W/synth_val.log" 2>&1 || return 1
    echo "held-out synthetic samples ready at ${SECONDS}s"
    python3 docs/scripts/synth_until.py --out "$W/train" --n "$N" --seed 2000 \
        --seconds "$(( GEN_CUTOFF - SECONDS ))" --workers "${GEN_WORKERS:-10}" || return 1
    tryon train parser "${common[@]}" --data "$W/train" --val-data "$W/val" \
        --out "$W/syn_parser" --batch 32 --lr 1e-3 --input-scale 1 --init $B/parser \
        --workers 4 --seed 127 --max-minutes "$(minutes_left)" > "$W/syn_parser.log" 2>&1 &
    tryon train tom "${common[@]}" "${tom_loss[@]}" --data "$W/train" --val-data "$W/val" \
        --out "$W/syn_tom" --batch 16 --lr 1e-4 --init $B/tom --gmm $B/gmm --workers 3 \
        --seed 131 --max-minutes "$(minutes_left)" > "$W/syn_tom.log" 2>&1 &
    wait
}
synthetic_runs &

RUNS="viton_tom viton_parser syn_parser syn_tom"
report() {
    echo "--- ${SECONDS}s"
    for run in $RUNS; do
        [ -f "$W/$run/losses.csv" ] || continue
        echo "$run: step $(tail -1 "$W/$run/losses.csv" | cut -d, -f1-2)," \
            "held-out $(tail -n +2 "$W/$run/validation.csv" 2>/dev/null | cut -d, -f1,3 | tr '\n' ' ')"
    done
}
while [ -n "$(jobs -rp)" ] && [ "$SECONDS" -lt "$DEADLINE" ]; do
    sleep 5
    (( SECONDS % 60 < 5 )) && report
done
report
for run in $RUNS; do
    echo "=== $run.log (end)"; tail -5 "$W/$run.log" 2>/dev/null
    [ -d "$W/$run/best" ] && tar -cf "$OUT/$run.tar" -C "$W" "$run/best" "$run/validation.csv" \
        "$run/losses.csv"
done
ls -la "$OUT"
