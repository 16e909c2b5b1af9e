"""`tryon bench --report`: where a new photo's time goes, next to CP-VTON's networks.

One run measures, on this machine within a few minutes:
  - the time to SERVING of a started `tryon serve`, next to `python -c "import torch"`
    (medians of three of each, alternated);
  - gRPC latency (one client) for new photos in three short rounds, each followed by
    CP-VTON's reference networks' forward time, so that the ratio (our new-photo p50 /
    the reference forward) comes from figures taken in the same minute; then gRPC
    latency for photos the server has analysed (a shopper's next garment);
  - the server's resident and peak memory;
  - the in-process time of each stage of a new 640x480 photo at batch 1 (decode, frame,
    parse, represent, warp, render, paste back, mark, encode);
  - the refusal rate: the share of the timed kind of photo (each shows a whole person)
    that the service's confidence rule would refuse.

The timed photos are generated 640x480 shoppers; with real photos given (the `viton`
weights find no person in generated ones), real photos set on a 640x480 canvas instead.

The reference networks are CP-VTON's as published (Wang et al. 2018: GMM ~19.1M and TOM
~21.3M parameters) plus an smp U-Net-ResNet18 parser for the parse map and pose
heatmaps CP-VTON takes as given, built here in plain PyTorch, eager float32, channels
first, random weights (speed does not depend on them), batch 1 at the model resolution.
"""

from __future__ import annotations

import contextlib
import io
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from tryon.bench_grpc import (
    GARMENTS,
    PHOTO_SIZE,
    PHOTOS,
    LocalServer,
    alternated_load,
    percentile,
    run_load,
    shopper_photos,
)

ROUNDS = 3  # gRPC runs on new photos alternated with the reference networks' timings
REFERENCE_REPEATS = 21
STARTS = 3  # server starts to SERVING, alternated with `import torch`
STAGES = (
    "decode",
    "frame",
    "parse",
    "represent",
    "warp",
    "render",
    "paste_back",
    "mark",
    "encode",
)


@dataclass
class LatencyFigures:
    """One gRPC run: successful calls, p50/p95 in milliseconds, failures by status code."""

    calls: int
    p50_ms: float
    p95_ms: float
    errors: dict[str, int]


@dataclass
class RefusalFigures:
    """How many of `photos` (each showing a whole person) scored under `threshold`."""

    source: str
    photos: int
    refused: int
    threshold: float

    @property
    def rate(self) -> float:
        return self.refused / max(self.photos, 1)


@dataclass
class BenchReport:
    """What `run_report` measured; milliseconds, MiB, seconds."""

    machine: dict[str, str | int]
    stages_ms: dict[str, float]
    watermark_ms: float
    c2pa_ms: float
    in_process_ms: float
    grpc_new: LatencyFigures
    grpc_seen: LatencyFigures
    reference_ms: dict[str, float]
    reference_parameters: dict[str, int]
    server_rss_mib: float
    server_peak_rss_mib: float
    seconds_to_serving: float
    seconds_to_import_torch: float
    refusals: list[RefusalFigures] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """gRPC p50 for a new photo over the reference networks' forward time (target
        at most 0.33)."""
        return self.grpc_new.p50_ms / self.reference_ms["total"]

    @property
    def serving_over_import(self) -> float:
        """Time to SERVING over the time to import torch (target at most 2)."""
        return self.seconds_to_serving / self.seconds_to_import_torch

    def to_dict(self) -> dict:
        """The report as JSON-ready values, with the derived figures."""
        return {
            **asdict(self),
            "ratio": self.ratio,
            "serving_over_import": self.serving_over_import,
            "refusals": [{**asdict(r), "rate": r.rate} for r in self.refusals],
        }


# The reference networks ------------------------------------------------------------------
class _Extraction(nn.Sequential):
    """CP-VTON's GMM feature extractor: four stride-2 4x4 convolutions (64-512 channels)
    and two 3x3 ones at 512, ReLU then batch norm; `(B, C, H, W)` -> `(B, 512, H/16, W/16)`."""

    def __init__(self, channels: int) -> None:
        widths = [channels, 64, 128, 256, 512]
        layers: list[nn.Module] = []
        for inner, outer in zip(widths, widths[1:], strict=False):
            layers += [nn.Conv2d(inner, outer, 4, 2, 1), nn.ReLU(), nn.BatchNorm2d(outer)]
        layers += [nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(), nn.BatchNorm2d(512)]
        layers += [nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU()]
        super().__init__(*layers)


class ReferenceGmm(nn.Module):
    """CP-VTON's geometric matching module (~19.1M parameters): two extractors, L2
    normalisation, a correlation volume, a regressor of a 5x5 thin-plate spline, and the
    garment and its mask warped by it.

    forward: person `(B, 22, H, W)`, garment `(B, 3, H, W)` in [-1, 1], mask
    `(B, 1, H, W)` in [0, 1] -> warped garment and mask, same shapes.
    """

    def __init__(self, height: int = 256, width: int = 192, grid: int = 5) -> None:
        super().__init__()
        self.person = _Extraction(22)
        self.garment = _Extraction(3)
        cells = (height // 16) * (width // 16)
        self.regression = nn.Sequential(
            nn.Conv2d(cells, 512, 4, 2, 1), nn.BatchNorm2d(512), nn.ReLU(),
            nn.Conv2d(512, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(),
            nn.Conv2d(256, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(),
        )  # fmt: skip
        self.theta = nn.Linear(64 * (height // 64) * (width // 64), 2 * grid * grid)
        # The spline's fixed parts, as CP-VTON's TpsGridGen: control points on a grid,
        # the inverse of their system matrix, and the radial basis at every output pixel.
        axis = torch.linspace(-1, 1, grid)
        points = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
        self.register_buffer("system_inverse", torch.linalg.inv(_tps_system(points)))
        ys, xs = torch.linspace(-1, 1, height), torch.linspace(-1, 1, width)
        pixels = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        self.register_buffer("basis", _tps_basis(pixels, points))
        self.register_buffer("points", points)
        self.size = (height, width)

    def forward(
        self, person: torch.Tensor, garment: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.normalize(self.person(person), dim=1)
        b = F.normalize(self.garment(garment), dim=1)
        batch, channels, h, w = a.shape
        # Correlation: every garment cell against every person cell, CP-VTON's order.
        flat_a = a.transpose(2, 3).reshape(batch, channels, h * w)
        flat_b = b.reshape(batch, channels, h * w).transpose(1, 2)
        correlation = torch.bmm(flat_b, flat_a).reshape(batch, h, w, h * w)
        correlation = F.relu(correlation.permute(0, 3, 1, 2))
        offsets = torch.tanh(self.theta(self.regression(correlation).flatten(1)))
        targets = self.points + offsets.reshape(batch, -1, 2)
        zeros = targets.new_zeros(batch, 3, 2)
        coefficients = self.system_inverse @ torch.cat((targets, zeros), 1)
        sampling = (self.basis @ coefficients).reshape(batch, *self.size, 2)
        warped = F.grid_sample(garment, sampling, padding_mode="border", align_corners=True)
        warped_mask = F.grid_sample(mask, sampling, padding_mode="zeros", align_corners=True)
        return warped, warped_mask


def _tps_system(points: torch.Tensor) -> torch.Tensor:
    """The `(N + 3, N + 3)` thin-plate-spline system of control `points` `(N, 2)`."""
    count = points.shape[0]
    affine = torch.cat((torch.ones(count, 1), points), 1)
    system = torch.zeros(count + 3, count + 3)
    system[:count, :count] = _radial(torch.cdist(points, points))
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    return system


def _tps_basis(pixels: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """`(P, N + 3)`: each pixel's radial terms to the control points, then 1, x, y."""
    return torch.cat((_radial(torch.cdist(pixels, points)), torch.ones(len(pixels), 1), pixels), 1)


def _radial(distance: torch.Tensor) -> torch.Tensor:
    squared = distance.square()
    return squared * torch.log(squared.clamp_min(1e-12))


class _UnetBlock(nn.Module):
    """One level of CP-VTON's U-Net: a stride-2 4x4 convolution down, bilinear upsampling
    and a 3x3 convolution up, instance norm; inner levels concatenate their input."""

    def __init__(
        self,
        outer: int,
        inner: int,
        inside: nn.Module | None = None,
        channels_in: int | None = None,
        outermost: bool = False,
    ) -> None:
        super().__init__()
        down = nn.Conv2d(channels_in or outer, inner, 4, 2, 1, bias=True)
        up_in = inner if inside is None else inner * 2
        up = [
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear"),
            nn.Conv2d(up_in, outer, 3, 1, 1),
        ]
        if outermost:
            layers = [down, inside, *up]
        elif inside is None:
            layers = [nn.LeakyReLU(0.2), down, *up, nn.InstanceNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2), down, nn.InstanceNorm2d(inner), inside]
            layers += [*up, nn.InstanceNorm2d(outer)]
        self.model = nn.Sequential(*layers)
        self.outermost = outermost

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat((x, y), 1)


class ReferenceTom(nn.Module):
    """CP-VTON's try-on module (~21.3M parameters): a six-level U-Net (64-512 channels)
    from the person representation and the warped garment `(B, 25, H, W)` to a rendered
    person `(B, 3, H, W)` in [-1, 1] and a composition mask, composed with the garment."""

    def __init__(self, channels: int = 25, width: int = 64, levels: int = 6) -> None:
        super().__init__()
        block = _UnetBlock(width * 8, width * 8)
        for _ in range(levels - 5):
            block = _UnetBlock(width * 8, width * 8, block)
        block = _UnetBlock(width * 4, width * 8, block)
        block = _UnetBlock(width * 2, width * 4, block)
        block = _UnetBlock(width, width * 2, block)
        self.unet = _UnetBlock(4, width, block, channels_in=channels, outermost=True)

    def forward(self, person: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        out = self.unet(torch.cat((person, warped), 1))
        rendered, mask = torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:])
        return warped * mask + rendered * (1 - mask)


def reference_networks() -> dict[str, nn.Module]:
    """The parser (smp U-Net-ResNet18, LIP-20 parse + 18 heatmaps), GMM and TOM."""
    import segmentation_models_pytorch as smp

    parser = smp.Unet("resnet18", encoder_weights=None, classes=20 + 18)
    return {"parser": parser, "gmm": ReferenceGmm(), "tom": ReferenceTom()}


class ReferenceTimer:
    """Times the reference networks at batch 1, eager float32, on random inputs `size`
    (height, width); `run` may be called several times, between other measurements."""

    def __init__(self, size: tuple[int, int] = (256, 192)) -> None:
        self.networks = {name: net.eval() for name, net in reference_networks().items()}
        generator = torch.Generator().manual_seed(0)
        photo = torch.rand(1, 3, *size, generator=generator)
        person, tom_person = torch.rand(1, 22, *size), torch.rand(1, 22, *size)
        garment, mask = torch.rand(1, 3, *size), torch.rand(1, 1, *size)
        self.calls: dict[str, Callable[[], object]] = {
            "parser": lambda: self.networks["parser"](photo),
            "gmm": lambda: self.networks["gmm"](person, garment, mask),
            "tom": lambda: self.networks["tom"](tom_person, garment),
        }
        self.timings: dict[str, list[float]] = {name: [] for name in self.calls}

    def run(self, repeats: int) -> None:
        """One untimed call of each, then `repeats` timed rounds of the three."""
        with torch.inference_mode():
            for call in self.calls.values():
                call()
            for _ in range(repeats):  # interleaved, so that drift hits all three alike
                for name, call in self.calls.items():
                    start = time.perf_counter()
                    call()
                    self.timings[name].append((time.perf_counter() - start) * 1e3)

    def medians(self) -> dict[str, float]:
        """Median milliseconds per network over every run, and their sum as "total"."""
        medians = {name: statistics.median(values) for name, values in self.timings.items()}
        return {**medians, "total": sum(medians.values())}

    def parameters(self) -> dict[str, int]:
        return {n: sum(p.numel() for p in net.parameters()) for n, net in self.networks.items()}


# Our pipeline, stage by stage ------------------------------------------------------------
def time_stages(
    weights: str | None, precision: str, photos: list[bytes], repeats: int
) -> tuple[dict[str, float], float, float, str]:
    """Median milliseconds per stage of a new photo at batch 1, in process, as the server
    runs them (the garment prepared once, as the server's cache holds it); the
    watermark's and the C2PA signature's share of "mark"; and what ran the parser's
    network ("openvino" or "torch", as `TRYON_PARSER_RUNTIME` chose for the server too)."""
    from tryon.data.synth import render_garment
    from tryon.imaging import decode_image
    from tryon.pipeline import TryOnPipeline
    from tryon.provenance import TryOnClaims, mark_image, sign_manifest
    from tryon.provenance.certificates import create_test_authority

    pipeline = TryOnPipeline.from_pretrained(weights, precision=precision)
    credentials = create_test_authority().credentials
    image, mask = render_garment(0, 0)
    garments, masks = pipeline.prepare_garments([image], [mask])
    rows: list[dict[str, float]] = []
    for index in range(repeats + 1):  # the first is a warm-up
        row: dict[str, float] = {}
        start = time.perf_counter()
        photo = decode_image(photos[index % len(photos)])
        row["decode"] = (time.perf_counter() - start) * 1e3
        result = pipeline.try_on([pipeline.analyse_person(photo)], garments, masks)[0]
        row.update(result.timings)
        claims = TryOnClaims(f"report-{index}", pipeline.meta.name, pipeline.meta.version)
        start = time.perf_counter()
        marked = mark_image(result.image, claims)
        row["watermark"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        buffer = io.BytesIO()
        Image.fromarray(marked).save(buffer, format="JPEG", quality=90)
        row["encode"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        sign_manifest(buffer.getvalue(), "image/jpeg", claims, credentials)
        row["c2pa"] = (time.perf_counter() - start) * 1e3
        row["render"] = row.pop("synthesize")
        row["mark"] = row["watermark"] + row["c2pa"]
        rows.append(row)
    medians = {name: statistics.median(row.get(name, 0.0) for row in rows[1:]) for name in rows[0]}
    stages = {name: medians[name] for name in STAGES}
    return stages, medians["watermark"], medians["c2pa"], pipeline.parser_runtime_name


def refusal_rate(
    weights: str | None,
    precision: str,
    photos: list[np.ndarray],
    source: str,
    threshold: float,
) -> RefusalFigures:
    """How many `photos` `(H, W, 3)` uint8 (each showing a person) the service would
    refuse: confidence under `threshold`, as `tryon serve --min-confidence`."""
    from tryon.pipeline import TryOnPipeline

    pipeline = TryOnPipeline.from_pretrained(weights, precision=precision)
    scores = [pipeline.analyse_person(photo).confidence for photo in photos]
    refused = sum(not score >= threshold for score in scores)
    return RefusalFigures(source, len(photos), refused, threshold)


def generated_shoppers(count: int, seed: int = 202) -> list[np.ndarray]:
    """Generated 640x480 (landscape) shopper photos, JPEG 90 round-tripped as sent."""
    from tryon.data.synth import generate_sample
    from tryon.imaging import decode_image

    photos = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(generate_sample(seed, index, PHOTO_SIZE).person).save(
            buffer, format="JPEG", quality=90
        )
        photos.append(decode_image(buffer.getvalue()))
    return photos


def real_photos(folder: Path, count: int) -> list[np.ndarray]:
    """`count` photos spread evenly over the sorted JPEG/PNG files of `folder` (read, never
    copied)."""
    from tryon.imaging import decode_image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise FileNotFoundError(f"no .jpg or .png photos in {folder}; give a folder of photos")
    chosen = files[:: max(1, len(files) // count)][:count]
    return [decode_image(path.read_bytes()) for path in chosen]


def real_shopper_photos(folder: Path, count: int = PHOTOS) -> list[bytes]:
    """`count` real photos from `folder`, each scaled to fit PHOTO_SIZE and set in the
    middle of a PHOTO_SIZE canvas of its border's median colour (the studio backdrop),
    JPEG 90: real people at the size the latency target is for.

    Not the edge pixels repeated outwards: an arm or hair touching the photo's side then
    became streaks across the canvas that the parser took for the person, and 2 of 200
    VITON photos were refused that are dressed as they are and on a plain backdrop."""
    from tryon.imaging import encode_image, resize_pixels

    height, width = PHOTO_SIZE
    photos = []
    for photo in real_photos(folder, count):
        scale = min(height / photo.shape[0], width / photo.shape[1])
        h, w = round(photo.shape[0] * scale), round(photo.shape[1] * scale)
        top, left = (height - h) // 2, (width - w) // 2
        scaled = resize_pixels(photo, (h, w))
        border = np.concatenate([scaled[0], scaled[-1], scaled[:, 0], scaled[:, -1]])
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = np.median(border, axis=0).astype(np.uint8)
        canvas[top : top + h, left : left + w] = scaled
        photos.append(encode_image(canvas, "jpeg", quality=90))
    return photos


def import_torch_seconds() -> float:
    """Seconds of `python -c "import torch"` in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def startup_seconds(
    url: str, weights: str | None, max_batch: int, precision: str, repeats: int
) -> tuple[list[float], list[float]]:
    """`repeats` pairs of (`import torch`, a started server's time to SERVING), alternated,
    so that the machine's drift weighs on both alike: the two lists of seconds."""
    imports, starts = [], []
    for _ in range(repeats):
        imports.append(import_torch_seconds())
        with LocalServer(url, weights, max_batch, precision) as server:
            starts.append(server.seconds_to_serving)
    return imports, starts


def run_report(
    *,
    weights: str | None = None,
    precision: str | None = None,
    seconds: float = 15.0,
    stage_repeats: int = 20,
    refusal_photos: int = 40,
    real_photo_folder: Path | None = None,
    echo: Callable[[str], None] = print,
) -> BenchReport:
    """Run every measurement (see the module docstring) and print the report."""
    from tryon.demo import build_sample_catalog, sample_sku
    from tryon.imaging import decode_image
    from tryon.models import precision_name, resolve_precision
    from tryon.server.settings import ServerSettings

    settings = ServerSettings.load()
    precision = precision or settings.precision
    photos = (
        shopper_photos() if real_photo_folder is None else real_shopper_photos(real_photo_folder)
    )
    skus = [sample_sku(index) for index in range(GARMENTS)]
    with tempfile.TemporaryDirectory() as tmp:
        url = build_sample_catalog(Path(tmp) / "catalog.db", GARMENTS)
        echo(f"timing `python -c 'import torch'` and the server's start, {STARTS} of each...")
        # The server the rest of the report loads is the last start.
        imports, starts = startup_seconds(url, weights, settings.max_batch, precision, STARTS - 1)
        imports.append(import_torch_seconds())
        with LocalServer(url, weights, settings.max_batch, precision) as server:
            starts.append(server.seconds_to_serving)
            echo(
                f"server SERVING {server.seconds_to_serving:.1f} s after launch; gRPC with new "
                "photos and CP-VTON's networks (eager float32), alternated"
            )
            _warm_up(server.target, photos, skus)
            # Alternated in short rounds, so that the machine's drift (other work, a
            # noisy neighbour) weighs on both sides of the ratio alike.
            reference = ReferenceTimer()
            new_run = alternated_load(
                server.target,
                photos,
                skus,
                1,
                seconds,
                ROUNDS,
                lambda: reference.run(REFERENCE_REPEATS // ROUNDS),
            )
            new = _latency(new_run.latencies, new_run.errors)
            if new.calls == 0:
                raise RuntimeError(
                    f"every new-photo call failed ({dict(new_run.errors)}), so there is no "
                    "latency to report; FAILED_PRECONDITION means these weights found no "
                    "person in the photos: give photos of the kind they were trained on "
                    "(--real-photos)"
                )
            reference_ms, reference_parameters = reference.medians(), reference.parameters()
            echo("gRPC, photos the server has analysed")
            seen_run = run_load(server.target, photos, skus, 1, seconds, seen_photos=True)
            seen = _latency(seen_run.latencies, seen_run.errors)
            memory = server.memory_mib()
    echo("stages in process")
    stages, watermark_ms, c2pa_ms, parser_runtime = time_stages(
        weights, precision, photos, stage_repeats
    )
    echo("refusal rate")
    threshold = settings.min_confidence
    # Photos of the kind the gRPC runs timed: weights trained on real photos find nobody
    # in generated ones, and a rate on those would measure only that.
    if real_photo_folder is None:
        judged, source = generated_shoppers(refusal_photos), "generated 640x480"
    else:
        encoded = real_shopper_photos(real_photo_folder, refusal_photos)
        judged = [decode_image(photo) for photo in encoded]
        source = f"{real_photo_folder} on a 640x480 canvas"
    refusals = [refusal_rate(weights, precision, judged, source, threshold)]
    report = BenchReport(
        machine={
            "cpu": _cpu_name(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "precision": precision_name(resolve_precision(precision, torch.device("cpu"))),
            "parser_runtime": parser_runtime,
            "weights": weights or "bundled default",
            "photos": "generated 640x480 shoppers"
            if real_photo_folder is None
            else f"real photos from {real_photo_folder} on a 640x480 canvas",
        },
        stages_ms=stages,
        watermark_ms=watermark_ms,
        c2pa_ms=c2pa_ms,
        in_process_ms=sum(stages.values()),
        grpc_new=new,
        grpc_seen=seen,
        reference_ms=reference_ms,
        reference_parameters=reference_parameters,
        server_rss_mib=memory["VmRSS"],
        server_peak_rss_mib=memory["VmHWM"],
        seconds_to_serving=statistics.median(starts),
        seconds_to_import_torch=statistics.median(imports),
        refusals=refusals,
    )
    for line in markdown(report).splitlines():
        echo(line)
    return report


def _warm_up(target: str, photos: list[bytes], skus: list[str], calls: int = 3) -> None:
    """A few untimed calls: the server's first try-ons allocate what later ones reuse
    (the first took 3.6 s on a loaded 2-core VM)."""
    from tryon.client import ServiceError, TryOnClient

    with TryOnClient(target, timeout_s=60) as client:
        for index in range(calls):
            with contextlib.suppress(ServiceError):
                client.try_on(photos[index % len(photos)] + b"warm-up", skus[index % len(skus)])


def _latency(latencies: list[float], errors: dict[str, int]) -> LatencyFigures:
    return LatencyFigures(
        len(latencies), percentile(latencies, 50), percentile(latencies, 95), dict(errors)
    )


def _cpu_name() -> str:
    with open("/proc/cpuinfo") as info:  # Linux; elsewhere the platform's word
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def markdown(report: BenchReport) -> str:
    """The report as markdown tables: ratio and service first, then the stages."""
    r = report
    parser_runtime = r.machine.get("parser_runtime", "torch")
    lines = [
        f"Machine: {r.machine['cpu']}, {r.machine['threads']} threads, "
        f"{r.machine['precision']} networks (parser in {parser_runtime}), "
        f"weights {r.machine['weights']}; timed photos: "
        f"{r.machine.get('photos', 'generated 640x480 shoppers')}.",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
        f"| gRPC p50, new photo / reference networks' forward | **{r.ratio:.2f}x** "
        f"({r.grpc_new.p50_ms:.0f} / {r.reference_ms['total']:.0f} ms) | <= 0.33x |",
        f"| gRPC new photo, 1 client | p50 {r.grpc_new.p50_ms:.0f} ms, p95 "
        f"{r.grpc_new.p95_ms:.0f} ms ({r.grpc_new.calls} calls, errors "
        f"{r.grpc_new.errors or 0}) | |",
        f"| gRPC seen photo, 1 client | p50 {r.grpc_seen.p50_ms:.0f} ms, p95 "
        f"{r.grpc_seen.p95_ms:.0f} ms ({r.grpc_seen.calls} calls, errors "
        f"{r.grpc_seen.errors or 0}) | |",
        "| reference networks (parser / GMM / TOM) | "
        + " / ".join(f"{r.reference_ms[n]:.0f}" for n in ("parser", "gmm", "tom"))
        + " ms; "
        + " / ".join(f"{r.reference_parameters[n] / 1e6:.1f}M" for n in ("parser", "gmm", "tom"))
        + " parameters | |",
        f"| server memory | {r.server_rss_mib:.0f} MiB resident, peak "
        f"{r.server_peak_rss_mib:.0f} MiB | <= 1024 MiB |",
        f"| time to SERVING / `import torch` | {r.serving_over_import:.1f}x "
        f"({r.seconds_to_serving:.1f} / {r.seconds_to_import_torch:.1f} s) | <= 2x |",
    ]
    for refusal in r.refusals:
        lines.append(
            f"| refused, {refusal.source} | {refusal.refused} of {refusal.photos} "
            f"({refusal.rate:.1%}) at confidence < {refusal.threshold:.2f} | < 1% |"
        )
    lines += ["", "| stage (new photo, batch 1, in process) | median ms |", "| --- | --- |"]
    lines += [f"| {name.replace('_', ' ')} | {r.stages_ms[name]:.1f} |" for name in STAGES]
    lines += [
        f"| (mark = watermark {r.watermark_ms:.1f} + C2PA {r.c2pa_ms:.1f}) | |",
        f"| total | {r.in_process_ms:.1f} |",
    ]
    return "\n".join(lines) + "\n"
