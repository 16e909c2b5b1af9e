"""Measure the watermark's robustness and false positives, and the marking's latency.

    python -m tryon.provenance.bench [--photos DIR] [--count 200] [--json]

Marked images: the first `count` photos of DIR, watermarked, then shrunk 0.5x (bicubic)
and saved as JPEG quality 70, as a shop or a social network would. Unmarked images: the
next `count` photos, never marked, read as they are and after the same treatment. Each
is measured at the photos' own size and at 640x480 (height x width, upscaled), the
size of a typical shopper photo. Latency: watermark embedding and C2PA signing (a
throw-away test certificate) of one 640x480 (portrait) try-on, median of repeated runs.

DIR defaults to the VITON photos (../shared/viton/train/image), which are research-only:
they are read here and never copied.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tryon.provenance import TryOnClaims, mark_image, read_watermark, sign_manifest
from tryon.provenance.watermark import WatermarkPayload

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2].parent / "shared/viton/train/image"
JPEG_QUALITY = 70
SCALE = 0.5
LATENCY_SIZE = (640, 480)  # height, width: a portrait shopper photo


def shop_treatment(image: np.ndarray) -> np.ndarray:
    """What a shop or social network does to an image: shrink 0.5x, save as JPEG 70."""
    picture = Image.fromarray(image)
    size = (round(picture.width * SCALE), round(picture.height * SCALE))
    buffer = io.BytesIO()
    picture.resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buffer).convert("RGB"))


def robustness(photos: list[Path], count: int, size: tuple[int, int] | None) -> dict:
    """Detection and false-positive rates over `count` marked and `count` unmarked photos,
    resized to `size` (height, width) first unless None."""
    marked, unmarked = photos[:count], photos[count : 2 * count]
    detected, psnr, strengths = 0, [], []
    for index, path in enumerate(marked):
        image = _load(path, size)
        claims = TryOnClaims(f"bench-{index}", "synthetic", "0.1.0")
        watermarked = mark_image(image, claims)
        error = np.mean((watermarked.astype(np.float64) - image) ** 2)
        psnr.append(10 * np.log10(255**2 / max(error, 1e-12)))
        reading = read_watermark(shop_treatment(watermarked))
        strengths.append(reading.strength)
        expected = WatermarkPayload.for_tryon(claims.tryon_id, "synthetic", "0.1.0")
        detected += reading.payload == expected
    false_plain, false_treated, unmarked_strengths = 0, 0, []
    for path in unmarked:
        image = _load(path, size)
        plain, treated = read_watermark(image), read_watermark(shop_treatment(image))
        false_plain += plain.found
        false_treated += treated.found
        unmarked_strengths += [plain.strength, treated.strength]
    return {
        "size": "x".join(map(str, image.shape[:2])),
        "marked": len(marked),
        "detected": detected,
        "detection_rate": detected / len(marked),
        "unmarked": len(unmarked),
        "false_positives": false_plain + false_treated,
        "false_positive_rate": (false_plain + false_treated) / (2 * len(unmarked)),
        "false_positives_as_is": false_plain,
        "false_positives_after_treatment": false_treated,
        "strength_marked_min": round(min(strengths), 3),
        "strength_unmarked_max": round(max(unmarked_strengths), 3),
        "psnr_db_mean": round(float(np.mean(psnr)), 1),
        "psnr_db_min": round(float(np.min(psnr)), 1),
    }


def latency(repeats: int = 30) -> dict:
    """Median milliseconds to watermark and to C2PA-sign one 640x480 (portrait) try-on (JPEG)."""
    from tryon.provenance.certificates import create_test_authority

    credentials = create_test_authority().credentials
    rng = np.random.default_rng(0)
    image = (rng.random((*LATENCY_SIZE, 3)) * 255).astype(np.uint8)
    claims = TryOnClaims("latency", "synthetic", "0.1.0")
    embed_ms, encode_ms, sign_ms = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        marked = mark_image(image, claims)
        embedded = time.perf_counter()
        buffer = io.BytesIO()
        Image.fromarray(marked).save(buffer, "JPEG", quality=90)
        encoded = time.perf_counter()
        sign_manifest(buffer.getvalue(), "image/jpeg", claims, credentials)
        signed = time.perf_counter()
        embed_ms.append((embedded - start) * 1e3)
        encode_ms.append((encoded - embedded) * 1e3)
        sign_ms.append((signed - encoded) * 1e3)
    return {
        "size": "x".join(map(str, LATENCY_SIZE)),
        "watermark_ms": round(statistics.median(embed_ms), 2),
        "jpeg_encode_ms": round(statistics.median(encode_ms), 2),
        "c2pa_sign_ms": round(statistics.median(sign_ms), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them (a table, or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos")
    parser.add_argument("--count", type=int, default=200, help="marked and unmarked photos each")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    photos = sorted(
        p for p in args.photos.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if len(photos) < 2 * args.count:
        print(
            f"error: {args.photos} holds {len(photos)} photos, {2 * args.count} are needed; "
            "give --photos DIR or a smaller --count",
            file=sys.stderr,
        )
        return 1
    results = {
        "robustness": [
            robustness(photos, args.count, None),
            robustness(photos, args.count, LATENCY_SIZE),
        ],
        "latency": latency(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"watermark after 0.5x resize + JPEG {JPEG_QUALITY} ({args.count} marked, "
        f"{args.count} unmarked photos from {args.photos}):"
    )
    for row in results["robustness"]:
        print(
            f"  {row['size']:>8}: detected {row['detected']}/{row['marked']} "
            f"({row['detection_rate']:.1%}), false positives {row['false_positives']}/"
            f"{2 * row['unmarked']} ({row['false_positive_rate']:.1%}; as is "
            f"{row['false_positives_as_is']}, after treatment "
            f"{row['false_positives_after_treatment']}), strength marked min "
            f"{row['strength_marked_min']} vs unmarked max {row['strength_unmarked_max']}, "
            f"PSNR {row['psnr_db_mean']} dB (min {row['psnr_db_min']})"
        )
    timing = results["latency"]
    print(
        f"latency at {timing['size']}: watermark {timing['watermark_ms']} ms, C2PA signing "
        f"{timing['c2pa_sign_ms']} ms (JPEG encoding itself {timing['jpeg_encode_ms']} ms)"
    )
    return 0


def _load(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    picture = Image.open(path).convert("RGB")
    if size is not None:
        picture = picture.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(picture)


if __name__ == "__main__":
    sys.exit(main())
