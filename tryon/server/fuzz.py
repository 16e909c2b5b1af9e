"""Hostile input for the photo path: `python -m tryon.server.fuzz --cases 10000`.

Builds seeded cases of what an attacker or a broken storefront may send: random bytes
(some behind a real file signature), truncated and mutated JPEG, PNG and WebP files,
headers that declare huge sizes, decompression bombs, odd colour modes (CMYK, 16-bit,
palette with alpha, animated, bad EXIF orientation) and malformed protobuf requests.
Every case must end in a defined outcome: the photo decodes, or it is refused with
`InvalidInputError` (INVALID_ARGUMENT through gRPC). Anything else (another exception, a
case running past its time limit) is a finding.

The command decodes every case with `tryon.imaging.decode_image` as the server does
(volume), then sends a share of them through a live loopback server with tiny random
networks (`--grpc-cases`), both as TryOn photos and as raw malformed request bytes, and
prints the outcomes per status, the process's peak resident memory and the slowest case.
It exits 1 if any case crashed, hung or got a status other than the defined ones.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import signal
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tryon.errors import InvalidInputError
from tryon.imaging import PHOTO_FORMATS, decode_image
from tryon.server.settings import ServerSettings

PHOTO_KINDS = (
    "random_bytes",
    "signature_and_noise",
    "truncated",
    "mutated",
    "huge_declared_size",
    "decompression_bomb",
    "odd_mode",
)
# The server's default photo limit.
MAX_PIXELS = ServerSettings.max_pixels
CASE_LIMIT_S = 10.0  # a case that takes longer is counted as a hang
# What the service may answer to a hostile call; INTERNAL or UNKNOWN would be a bug.
DEFINED_CODES = frozenset(
    {"OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND", "RESOURCE_EXHAUSTED"}
)
_SIGNATURES = (b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ")


@dataclass(frozen=True)
class Case:
    """One fuzz input: what kind of hostility it is, its seed, and the bytes."""

    kind: str
    seed: int
    data: bytes


@dataclass
class FuzzReport:
    """Outcomes of a run: counts per outcome (`ok`, a status code name, or
    `crash:<ExceptionType>` / `hang`), the slowest case, the peak resident memory."""

    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    slowest_s: float = 0.0
    slowest_case: str = ""
    findings: list[str] = field(default_factory=list)
    start_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0

    def add(self, case: Case, outcome: str, seconds: float, defined: bool) -> None:
        """Count one case's outcome; keep it as a finding unless `defined`."""
        self.cases += 1
        self.outcomes[outcome] += 1
        self.by_kind.setdefault(case.kind, Counter())[outcome] += 1
        if seconds > self.slowest_s:
            self.slowest_s, self.slowest_case = seconds, f"{case.kind} seed {case.seed}"
        if not defined:
            self.findings.append(f"{case.kind} seed {case.seed}: {outcome}")

    def to_dict(self) -> dict:
        """The report as JSON-ready values."""
        return {
            "cases": self.cases,
            "outcomes": dict(self.outcomes),
            "by_kind": {kind: dict(counts) for kind, counts in self.by_kind.items()},
            "slowest_s": round(self.slowest_s, 3),
            "slowest_case": self.slowest_case,
            "start_rss_mib": round(self.start_rss_mib, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "findings": self.findings[:50],
        }


# Case generators --------------------------------------------------------------------
def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@functools.cache
def _seed_files() -> tuple[bytes, ...]:
    """Valid photos to truncate and mutate: noise and gradients in the three formats,
    progressive JPEG, EXIF-rotated JPEG."""
    rng = np.random.default_rng(0)
    files = []
    for index, (height, width) in enumerate(((48, 40), (96, 64), (160, 120))):
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        noise = rng.integers(0, 255, (height, width, 3)).astype(np.float32)
        pixels = (0.5 * ramp + 0.5 * noise).astype(np.uint8)
        image = Image.fromarray(pixels)
        files.append(_encode(image, "JPEG", quality=70 + 10 * index))
        files.append(_encode(image, "PNG"))
        files.append(_encode(image, "WEBP", quality=80))
    exif = Image.Exif()
    exif[0x0112] = 6
    files.append(_encode(image, "JPEG", progressive=True, exif=exif.tobytes()))
    return tuple(files)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)


def _huge_declared_size(rng: random.Random) -> bytes:
    """A header that claims an enormous (or empty) image over a few bytes of data."""
    width = rng.choice((0, 1, 65_535, 100_000, 2**31 - 1, rng.randrange(1, 2**31)))
    height = rng.choice((0, 1, 65_535, 100_000, 2**31 - 1, rng.randrange(1, 2**31)))
    form = rng.randrange(3)
    if form == 0:
        body = zlib.compress(b"\x00" * rng.randrange(0, 4096))
        return _png_header(width, height) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")
    if form == 1:  # a JPEG whose frame header (SOF0) declares the size
        jpeg = bytearray(_seed_files()[0])
        at = jpeg.find(b"\xff\xc0")
        jpeg[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
        return bytes(jpeg)
    # WebP VP8X: 24-bit canvas sizes minus one
    canvas = (
        struct.pack("<I", (width - 1) & 0xFFFFFF)[:3]
        + struct.pack("<I", (height - 1) & 0xFFFFFF)[:3]
    )
    chunk = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


@functools.cache
def _bombs() -> tuple[bytes, ...]:
    """Small files that decode to huge images: PNGs of one colour just over and just under
    the pixel limit, a huge WebP, and a PNG with a text chunk that inflates to 64 MiB."""
    over = _encode(Image.new("L", (6_000, 5_000)), "PNG", optimize=False)
    under = _encode(Image.new("1", (5_000, 4_900)), "PNG")
    webp = _encode(Image.new("RGB", (16_383, 1_600)), "WEBP", lossless=True)
    text = zlib.compress(b"\x00" * (64 << 20), 9)
    z_text = _png_chunk(b"zTXt", b"comment\x00\x00" + text)
    small = _encode(Image.new("RGB", (64, 64)), "PNG")
    text_bomb = small[:33] + z_text + small[33:]
    return over, under, webp, text_bomb


def _odd_mode(rng: random.Random) -> bytes:
    """A valid file in a colour mode or shape the decoder must convert or refuse."""
    size = (rng.randrange(1, 200), rng.randrange(1, 200))
    noise = np.random.default_rng(rng.randrange(2**32))
    choice = rng.randrange(9)
    if choice == 0:
        pixels = noise.integers(0, 255, (size[1], size[0], 4), dtype=np.uint8)
        return _encode(Image.fromarray(pixels).convert("CMYK"), "JPEG")
    if choice == 1:
        values = noise.integers(0, 65_535, (size[1], size[0]), dtype=np.uint16)
        return _encode(Image.fromarray(values), "PNG")  # mode I;16
    if choice == 2:  # palette with per-index alpha (tRNS)
        palette = Image.fromarray(noise.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        quantised = palette.quantize(16)
        quantised.info["transparency"] = bytes(rng.randrange(256) for _ in range(16))
        return _encode(quantised, "PNG", transparency=quantised.info["transparency"])
    if choice == 3:  # animated PNG or WebP
        frames = [Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))] * 3
        fmt = rng.choice(("PNG", "WEBP"))
        return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40)
    if choice == 4:
        return _encode(Image.new("LA", size, (rng.randrange(256), rng.randrange(256))), "PNG")
    if choice == 5:
        return _encode(Image.new("1", size, rng.randrange(2)), "PNG")
    if choice == 6:  # greyscale with a garbage ICC colour profile
        profile = rng.randbytes(rng.randrange(1, 2048))
        return _encode(Image.new("L", size), "JPEG", icc_profile=profile)
    if choice == 7:  # EXIF orientation out of range, or garbage EXIF
        exif = Image.Exif()
        exif[0x0112] = rng.choice((0, 9, 255, 65_535))
        raw = exif.tobytes() if rng.random() < 0.5 else b"Exif\x00\x00" + rng.randbytes(64)
        return _encode(Image.new("RGB", size), "JPEG", exif=raw)
    extreme = rng.choice(((1, 16_000), (16_000, 1), (32, 16_383), (4, 4)))
    return _encode(Image.new("RGB", extreme), rng.choice(("PNG", "WEBP")))


def _mutated(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(_seed_files()))
    for _ in range(rng.randrange(1, 24)):
        operation = rng.randrange(4)
        at = rng.randrange(len(data))
        if operation == 0:
            data[at] = rng.randrange(256)
        elif operation == 1:
            data[at] ^= 1 << rng.randrange(8)
        elif operation == 2:
            del data[at : at + rng.randrange(1, 64)]
        else:
            data[at:at] = rng.randbytes(rng.randrange(1, 64))
        if not data:
            break
    return bytes(data)


def make_case(kind: str, seed: int) -> Case:
    """The case `seed` of `kind` (one of PHOTO_KINDS); the same arguments give the same
    bytes."""
    rng = random.Random(f"{kind}:{seed}")
    if kind == "random_bytes":
        data = rng.randbytes(rng.choice((0, 1, 7, rng.randrange(8, 8192))))
    elif kind == "signature_and_noise":
        data = rng.choice(_SIGNATURES) + rng.randbytes(rng.randrange(0, 4096))
    elif kind == "truncated":
        whole = rng.choice(_seed_files())
        data = whole[: rng.randrange(0, len(whole))]
    elif kind == "mutated":
        data = _mutated(rng)
    elif kind == "huge_declared_size":
        data = _huge_declared_size(rng)
    elif kind == "decompression_bomb":
        data = rng.choice(_bombs())
    elif kind == "odd_mode":
        data = _odd_mode(rng)
    else:
        raise ValueError(f"unknown case kind {kind!r}, supported: {list(PHOTO_KINDS)}")
    return Case(kind, seed, data)


def photo_cases(count: int, seed: int = 0) -> Iterator[Case]:
    """`count` cases cycling through PHOTO_KINDS; decompression bombs, the slow ones, are
    one in a hundred."""
    rng = random.Random(seed)
    kinds = [kind for kind in PHOTO_KINDS if kind != "decompression_bomb"]
    for index in range(count):
        kind = "decompression_bomb" if index % 100 == 99 else kinds[index % len(kinds)]
        yield make_case(kind, rng.randrange(2**32))


# Running cases ----------------------------------------------------------------------
class _Hang(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Hang


def decode_outcome(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    """How the server's decode and validation treat `data`: `ok`, `INVALID_ARGUMENT`, or
    `crash:<ExceptionType>` for any other exception."""
    try:
        pixels = decode_image(data, max_pixels=max_pixels, formats=PHOTO_FORMATS)
    except InvalidInputError:
        return "INVALID_ARGUMENT"
    except _Hang:
        raise
    except Exception as error:  # the finding this tool exists for
        return f"crash:{type(error).__name__}"
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        return f"crash:bad array {pixels.dtype} {pixels.shape}"
    return "ok"


def timed(run: Callable[[], str], limit_s: float = CASE_LIMIT_S) -> tuple[str, float]:
    """`run()`'s outcome and seconds; `hang` if it ran past `limit_s` (main thread only)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    start = time.perf_counter()
    try:
        outcome = run()
    except _Hang:
        outcome = "hang"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return outcome, time.perf_counter() - start


def fuzz_decoding(cases: Iterator[Case], report: FuzzReport | None = None) -> FuzzReport:
    """Decode every case as the server does; count the outcomes and the peak memory."""
    report = report or FuzzReport()
    report.start_rss_mib = reset_peak_rss()
    for case in cases:
        outcome, seconds = timed(lambda case=case: decode_outcome(case.data))
        report.add(case, outcome, seconds, outcome in ("ok", "INVALID_ARGUMENT"))
    report.peak_rss_mib = peak_rss_mib()
    return report


def malformed_requests(count: int, valid: bytes, seed: int = 0) -> Iterator[Case]:
    """Raw TryOnRequest bytes that are not what the proto says: random bytes, a valid
    request truncated or mutated, bad UTF-8 in a string, negative or huge numbers, an
    unknown enum value, a length prefix pointing past the end, fields of wrong wire types."""
    rng = random.Random(seed)
    for index in range(count):
        form = index % 7
        if form == 0:
            data = rng.randbytes(rng.randrange(0, 512))
        elif form == 1:
            data = valid[: rng.randrange(0, len(valid))]
        elif form == 2:
            mutable = bytearray(valid)
            for _ in range(rng.randrange(1, 8)):
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
            data = bytes(mutable)
        elif form == 3:  # field 2 (garment_sku), a string, with invalid UTF-8
            data = valid + b"\x12\x03\xff\xfe\xfd"
        elif form == 4:  # output (field 3): format 99, quality -1, max_width huge
            output = b"\x08\x63" + b"\x10" + b"\xff" * 9 + b"\x01" + b"\x18\xff\xff\xff\xff\x07"
            data = valid + b"\x1a" + bytes([len(output)]) + output
        elif form == 5:  # person_image claims 2 GiB
            data = b"\x0a\xff\xff\xff\xff\x07" + rng.randbytes(16)
        else:  # person_image sent as a varint, garment_sku as a fixed64
            data = b"\x08\x01\x11" + rng.randbytes(8)
        yield Case(f"protobuf_{form}", index, data)


def fuzz_server(
    target: str,
    photos: Iterator[Case],
    requests: Iterator[Case],
    sku: str,
    timeout_s: float = 30.0,
    report: FuzzReport | None = None,
) -> FuzzReport:
    """Send each photo case as a TryOn and each raw request as TryOn's bytes to the
    service at `target`; count the status codes (anything outside DEFINED_CODES is a
    finding)."""
    import grpc
    from tryon_client.stubs.tryon.v2 import tryon_pb2

    report = report or FuzzReport()
    report.start_rss_mib = reset_peak_rss()
    with grpc.insecure_channel(target) as channel:
        raw = channel.unary_unary(
            "/tryon.v2.TryOnService/TryOn",
            request_serializer=None,
            response_deserializer=None,
        )

        def status(data: bytes) -> str:
            try:
                raw(data, timeout=timeout_s)
            except grpc.RpcError as error:
                return error.code().name
            return "OK"

        for case in photos:
            request = tryon_pb2.TryOnRequest(person_image=case.data, garment_sku=sku)
            start = time.perf_counter()
            code = status(request.SerializeToString())
            report.add(case, code, time.perf_counter() - start, code in DEFINED_CODES)
        for case in requests:
            start = time.perf_counter()
            code = status(case.data)
            report.add(case, code, time.perf_counter() - start, code in DEFINED_CODES)
    report.peak_rss_mib = peak_rss_mib()
    return report


def _memory_mib(field: str) -> float:
    """A memory figure of this process from Linux /proc (VmRSS, VmHWM), MiB."""
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_mib() -> float:
    """This process's peak resident memory since the last `reset_peak_rss`, MiB."""
    return _memory_mib("VmHWM")


def reset_peak_rss() -> float:
    """Start measuring the peak resident memory afresh; return the resident memory now."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: resets VmHWM to the current resident size
    return _memory_mib("VmRSS")


def _serve_and_fuzz(grpc_cases: int, seed: int, report: FuzzReport) -> None:
    """Send `grpc_cases` photo cases and as many malformed requests to a loopback server
    with tiny random networks and a generated catalog."""
    import tempfile
    from pathlib import Path

    import torch

    from tryon.demo import build_sample_catalog, sample_sku
    from tryon.models import GeometricMatcher, HumanParser, PipelineMeta, TryOnGenerator
    from tryon.pipeline import TryOnPipeline
    from tryon.server.app import ServerThread
    from tryon.server.settings import ServerSettings

    torch.manual_seed(0)
    pipeline = TryOnPipeline(
        HumanParser(encoder_name="tu-regnetx_002", decoder_channels=(16, 16, 8, 8, 8)),
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        TryOnGenerator(base_channels=8, depth=4, max_channels=32),
        PipelineMeta(name="fuzz", licence="test", training_data="none"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = build_sample_catalog(Path(tmp) / "catalog.db", 1)
        settings = ServerSettings(
            host="127.0.0.1", port=0, metrics_port=-1, database_url=url, min_confidence=0.0,
            drain_s=0.0, warmup=False, max_queue=512,
        )  # fmt: skip
        with ServerThread(settings, pipeline) as running:
            from tryon_client.stubs.tryon.v2 import tryon_pb2

            valid = tryon_pb2.TryOnRequest(
                person_image=_seed_files()[0], garment_sku=sample_sku(0)
            ).SerializeToString()
            fuzz_server(
                running.target,
                photo_cases(grpc_cases, seed + 1),
                malformed_requests(grpc_cases, valid, seed + 2),
                sample_sku(0),
                report=report,
            )


def main(argv: list[str] | None = None) -> int:
    """The benchmark command (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tryon.server.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000, help="photos to decode")
    parser.add_argument(
        "--grpc-cases",
        type=int,
        default=500,
        help="photos, and as many malformed requests, sent to a live loopback server",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    _seed_files(), _bombs()  # built before memory is measured
    decoding = fuzz_decoding(photo_cases(args.cases, args.seed))
    serving = FuzzReport()
    if args.grpc_cases:
        _serve_and_fuzz(args.grpc_cases, args.seed, serving)
    if args.json:
        print(json.dumps({"decode": decoding.to_dict(), "grpc": serving.to_dict()}, indent=2))
    else:
        for name, report in (("decode", decoding), ("grpc", serving)):
            if not report.cases:
                continue
            print(f"{name}: {report.cases} cases: {dict(report.outcomes.most_common())}")
            print(f"  slowest {report.slowest_s * 1e3:.0f} ms ({report.slowest_case})")
            print(
                f"  resident memory {report.start_rss_mib:.0f} MiB at the start, "
                f"peak {report.peak_rss_mib:.0f} MiB"
            )
            for kind, counts in sorted(report.by_kind.items()):
                print(f"  {kind:22s} {dict(counts.most_common())}")
            for finding in report.findings[:20]:
                print(f"  FINDING {finding}")
        print(f"{time.perf_counter() - started:.0f} s in all")
    return 1 if decoding.findings or serving.findings else 0


if __name__ == "__main__":
    sys.exit(main())
