"""Make the first samples of a synthetic dataset until a time limit, then stop.

`tryon synth` writes `pairs.txt` only once all `--n` samples exist. On a lent GPU the
training runs cannot wait for that, so this writes samples of `--seed` in parallel for at
most `--seconds`, then a `pairs.txt` of the samples that were finished (sample i is the
same as `tryon synth`'s sample i for that seed):

    python docs/scripts/synth_until.py --out /tmp/train --n 10000 --seed 2000 --seconds 150
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tryon.data.synth.writer import pair_line, prepare_folder, sample_pool, write_sample_job


def write_until(out: Path, n: int, seed: int, seconds: float, workers: int) -> int:
    """Write samples 0..n-1 of `seed` into `out` for at most `seconds`; returns how many
    were finished, all of which `out/pairs.txt` lists."""
    prepare_folder(out)
    started, done = time.perf_counter(), []
    jobs = [(str(out), seed, index, (256, 192)) for index in range(n)]
    with sample_pool(workers) as pool:
        for index in pool.imap_unordered(write_sample_job, jobs, chunksize=4):
            done.append(index)
            if time.perf_counter() - started > seconds:
                break
    (out / "pairs.txt").write_text("".join(f"{pair_line(i, i)}\n" for i in sorted(done)))
    return len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    count = write_until(args.out, args.n, args.seed, max(args.seconds, 10.0), args.workers)
    seconds = time.perf_counter() - started
    print(f"{count} synthetic samples in {seconds:.0f} s ({count / seconds:.1f}/s)")


if __name__ == "__main__":
    main()
