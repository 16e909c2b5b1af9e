"""`TryOnPipeline`: the one inference entry point (server, CLI, evaluation, benchmarks).

Stages for each request:
  1. frame the shopper: parse the whole photo, find the person, crop a box of the model's
     aspect around them (a person in a landscape photo still fills the model input);
  2. analyse the person in the crop: parse map, keypoints, confidence, representation;
  3. prepare the garment: product photo and mask at model resolution;
  4. warp the garment onto the body (GMM);
  5. synthesize: TOM renders and composes (with the photo's background continued under
     the try-on region, for a TOM that shows it); only the try-on region is repainted,
     less the shopper's arms that the new garment leaves bare, which stay the photo's;
  6. paste the painted region back into the original photo at its own resolution.

A person analysed once can try on any number of garments (`try_on` takes analyses).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tryon.errors import InvalidInputError, WeightsError
from tryon.framing import (
    Box,
    box_iou,
    common_framing_sizes,
    crop_to_model,
    feather,
    framing_window,
    paste_back,
    person_box,
    person_outline,
    whole_photo_box,
)
from tryon.imaging import resize_pixels, tensor_to_image
from tryon.labels import L_SHOULDER, NECK, NOSE, R_SHOULDER
from tryon.models import (
    GeometricMatcher,
    GmmOutput,
    HumanParser,
    TomOutput,
    TryOnGenerator,
    decode_keypoints,
    fold_batch_norms,
    in_precision,
    precision_name,
    resolve_precision,
    store_weights_in,
)
from tryon.models.bundle import PipelineMeta, load_pipeline_components, save_pipeline
from tryon.models.openvino_parser import (
    OpenVinoNetwork,
    openvino_error_reason,
    requested_parser_runtime,
    resolve_parser_runtime,
)
from tryon.representation import PersonRepresentation, build_representation

log = logging.getLogger(__name__)

BUNDLED_WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = "synthetic"
# Research-only weights: in a checkout, never in the wheel or the image.
RESEARCH_WEIGHTS = ("viton",)
MIN_PERSON_FRACTION = 0.01  # of the model's input pixels, below which there is no person
MIN_FOUND_CONFIDENCE = 1e-3
CORE_KEYPOINTS = (NOSE, NECK, R_SHOULDER, L_SHOULDER)  # a top cannot be fitted without these


def weights_folder(spec: str | Path | None = None) -> Path:
    """The pipeline folder for a bundled name ("synthetic", "viton") or a path; default
    `TRYON_WEIGHTS` or "synthetic"."""
    spec = spec or os.environ.get("TRYON_WEIGHTS") or DEFAULT_WEIGHTS
    path = Path(spec)
    if (path / "pipeline.json").exists():
        return path
    bundled = BUNDLED_WEIGHTS / str(spec)
    if (bundled / "pipeline.json").exists():
        return bundled
    if str(spec) in RESEARCH_WEIGHTS:
        raise WeightsError(
            f"the {spec!r} weights are research-only (non-commercial licence) and are not "
            f"installed with the package or the image: run from a checkout of the "
            f"repository (tryon/weights/{spec}), or copy that folder where the service can "
            f"read it and give its path (--weights /weights/{spec}, TRYON_WEIGHTS); see "
            "docs/deployment.md"
        )
    names = sorted(p.name for p in BUNDLED_WEIGHTS.glob("*") if (p / "pipeline.json").exists())
    raise WeightsError(
        f"no pipeline weights at {spec!r}: give a folder holding pipeline.json or one of the "
        f"bundled names {names}"
    )


@dataclass
class PersonAnalysis:
    """What the pipeline knows about one shopper photo (reusable across garments).

    photo: `(H0, W0, 3)` uint8, the original (None in a `for_cache` copy).
    box: the crop the model sees.
    person: `(1, 3, h, w)` in [-1, 1], the crop at model resolution (uint8 0-255 in a
    `for_cache` copy). parse: `(1, h, w)` int64 labels (uint8 in a `for_cache` copy).
    keypoints: `(1, 18, 3)` in crop pixels.
    representation: the person's network inputs (None in a `for_cache` copy: `try_on`
    rebuilds it). confidence in [0, 1] and, when low, `reason` says why.
    """

    photo: np.ndarray | None
    box: Box
    person: torch.Tensor
    parse: torch.Tensor
    keypoints: torch.Tensor
    representation: PersonRepresentation | None
    confidence: float
    reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def for_cache(self) -> PersonAnalysis:
        """A compact copy to keep between calls: ~0.2 MB at 256x192 instead of ~7. It
        drops the photo (the caller keeps its encoded bytes) and the representation (32
        float channels, rebuilt in a few milliseconds), and keeps the crop and the parse
        as uint8, which hold them exactly (the crop is made from uint8 pixels). `restore`
        makes it usable again."""
        pixels = self.person.add(1.0).mul(127.5).round().to(torch.uint8)
        return dataclasses.replace(
            self, photo=None, person=pixels, parse=self.parse.to(torch.uint8), representation=None
        )

    def restore(self, photo: np.ndarray) -> PersonAnalysis:
        """A `for_cache` copy made whole again with its decoded `photo` `(H0, W0, 3)` uint8:
        the same crop and parse as when it was analysed."""
        person = self.person.float().div(127.5).sub(1.0)
        return dataclasses.replace(self, photo=photo, person=person, parse=self.parse.long())

    def network_inputs(self) -> PersonRepresentation:
        """The representation, rebuilt from the crop, parse and keypoints if dropped."""
        if self.representation is not None:
            return self.representation
        return build_representation(self.person, self.parse, self.keypoints)


@dataclass
class TryOnResult:
    """One try-on: `image` at the photo's resolution, `model_image` at model resolution
    (before paste-back), both `(H, W, 3)` uint8; per-stage milliseconds in `timings`;
    `alpha` `(1, 1, h, w)` in [0, 1], how much of `model_image` was blended into the crop
    `box` of the photo (`tryon.framing.blend_weight` gives it at the photo's resolution)."""

    image: np.ndarray
    model_image: np.ndarray
    confidence: float
    timings: dict[str, float]
    alpha: torch.Tensor
    box: Box


class _Timer:
    """Milliseconds per named stage (a stage entered twice adds up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - start) * 1e3


class TryOnPipeline:
    """Parser + GMM + TOM, inference only.

    Args:
        parser, gmm, tom: the networks (eval mode is set here).
        meta: the weights' description (resolution, name, licence).
        device: where the networks run.
        precision: "auto", "float32" or "bfloat16", what the networks' convolutions run
            in (`tryon.models.precision`; auto is bfloat16 on CPUs with AVX512-BF16, faster there
            at the same scores); in bfloat16 their weights are stored in it too
            (`store_weights_in`), and the pipeline cannot be saved.
        folded: the networks' batch norms are folded (`from_pretrained`); no saving then.
        keep_arms: keep the shopper's own arms from the photo where the new garment leaves
            them bare (default); False repaints the whole try-on region, arms included.
        openvino_parser: the parser's network compiled by OpenVINO, run instead of the
            eager one (`tryon.models.openvino_parser`; `from_pretrained` picks it); the
            refiner and the outputs' decoding stay in PyTorch.

    `parse`, `warp` and `synthesize` call the parser, GMM and TOM in that precision with
    float32 inputs and outputs (`render` calls `synthesize` with what it needs from a person
    representation); the evaluation runs the networks through them too.
    """

    def __init__(
        self,
        parser: HumanParser,
        gmm: GeometricMatcher,
        tom: TryOnGenerator,
        meta: PipelineMeta,
        device: str | torch.device = "cpu",
        *,
        precision: str = "auto",
        folded: bool = False,
        keep_arms: bool = True,
        openvino_parser: OpenVinoNetwork | None = None,
    ) -> None:
        self.device = torch.device(device)
        # channels-last is the layout oneDNN's fast convolutions work in on the CPU.
        layout = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.memory_format = layout  # also of the person representations they are handed
        self.parser = parser.to(self.device, memory_format=layout).eval()
        self.gmm = gmm.to(self.device, memory_format=layout).eval()
        self.tom = tom.to(self.device, memory_format=layout).eval()
        self.precision = resolve_precision(precision, self.device)
        if self.precision != torch.float32:
            for network in (self.parser, self.gmm, self.tom):
                store_weights_in(network, self.precision)
        device_type = self.device.type
        self.warp = in_precision(self.gmm, self.precision, device_type)
        self.synthesize = in_precision(self.tom, self.precision, device_type)
        self.openvino_parser = openvino_parser
        self._eager_logits = in_precision(self.parser.network_logits, self.precision, device_type)
        self._parser_outputs = in_precision(self.parser.split_outputs, self.precision, device_type)
        self.meta = meta
        self.folded = folded
        self.keep_arms = keep_arms
        self.size = tuple(meta.resolution)
        self.aspect = self.size[0] / self.size[1]

    @property
    def precision_name(self) -> str:
        """What the networks' convolutions run in, as the options spell it ("bfloat16")."""
        return precision_name(self.precision)

    @property
    def parser_runtime_name(self) -> str:
        """What runs the parser's network: "openvino" or "torch"."""
        return "torch" if self.openvino_parser is None else "openvino"

    @torch.inference_mode()
    def parse(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The parser on `image` `(B, 3, H, W)` in [-1, 1], as `HumanParser.forward`:
        parse logits `(B, num_labels, H, W)` and heatmap logits `(B, num_keypoints, H, W)`,
        float32, from the network this pipeline runs it with."""
        return self._parser_outputs(self._network_logits(image), image)

    @torch.inference_mode()
    def warm_up_parser(self) -> None:
        """Run the parser's network once at each input size the framing pass gives the
        common photo shapes (`tryon.framing.common_framing_sizes`), so that no shopper
        pays for a first run at a size (with OpenVINO, each has its model compiled
        already, by `from_pretrained` or here)."""
        shapes = _framing_inputs(self.size)
        if self.openvino_parser is not None:
            self.openvino_parser.compile(shapes)
        for shape in shapes:
            self._network_logits(torch.zeros(shape, device=self.device))

    def _network_logits(self, image: torch.Tensor) -> torch.Tensor:
        """The parser's network on `image` (`HumanParser.network_logits`)."""
        if self.openvino_parser is None:
            return self._eager_logits(image)
        return self.openvino_parser(self.parser.network_input(image))

    @classmethod
    def from_pretrained(
        cls,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        *,
        precision: str = "auto",
        fold: bool = True,
        keep_arms: bool = True,
        parser_runtime: str | None = None,
    ) -> TryOnPipeline:
        """Load a pipeline folder or bundled weights by name (see `weights_folder`).

        precision: see the class; "auto" by default.
        fold: fold batch norms into convolutions (`fold_batch_norms`: the same outputs to
        float rounding, 5-15% faster per network on a 2-core CPU). To save a loaded
        pipeline again, load it with fold=False and precision="float32".
        keep_arms: see the class.
        parser_runtime: what runs the parser's network: "auto" (OpenVINO where the
        networks run in bfloat16 on the CPU and the folder holds a current export, else
        PyTorch), "openvino" or "torch" (`resolve_parser_runtime`); default
        `TRYON_PARSER_RUNTIME` or "auto". With OpenVINO, the parser's eager network is
        not loaded at all (nor segmentation-models-pytorch imported: about 1 s less to
        start), and the parser is compiled here for the framing sizes of common photo
        shapes (`OpenVinoNetwork.compile`); where that fails, "auto" loads the pipeline
        with the parser in PyTorch.
        """
        folder = weights_folder(weights)
        device = torch.device(device)
        runtime = requested_parser_runtime(parser_runtime)
        openvino_parser = resolve_parser_runtime(
            runtime, folder / "parser", resolve_precision(precision, device), device
        )
        parts = load_pipeline_components(folder, parser_network=openvino_parser is None)
        networks = (parts.parser, parts.gmm, parts.tom)
        if fold:
            networks = tuple(fold_batch_norms(network) for network in networks)
        if openvino_parser is not None:
            try:  # here, so that `auto` can still fall back to PyTorch
                openvino_parser.compile(_framing_inputs(tuple(parts.meta.resolution)))
            except RuntimeError as error:
                reason = openvino_error_reason(error)
                if runtime != "auto":
                    raise WeightsError(
                        f"OpenVINO cannot compile the parser's export in {folder}: {reason}; "
                        "run it in PyTorch with TRYON_PARSER_RUNTIME=torch"
                    ) from None
                log.warning(
                    "parser runs in PyTorch: OpenVINO cannot compile its export: %s", reason
                )
                return cls.from_pretrained(
                    folder, device, precision=precision, fold=fold, keep_arms=keep_arms,
                    parser_runtime="torch",
                )  # fmt: skip
        return cls(
            *networks,
            parts.meta,
            device,
            precision=precision,
            folded=fold,
            keep_arms=keep_arms,
            openvino_parser=openvino_parser,
        )

    def save_pretrained(self, directory: str | Path, *, fp16: bool = False) -> Path:
        """Write a pipeline folder; not for a folded pipeline, whose networks have lost the
        batch norms their configs describe, nor for one whose weights are in bfloat16."""
        changed = []
        if self.folded:
            changed.append(
                "its batch norms are folded into its convolutions (load it with fold=False)"
            )
        if self.precision != torch.float32:
            changed.append(
                f"its convolution weights are kept in {self.precision_name} "
                "(load it with precision='float32')"
            )
        if self.parser.network is None:
            changed.append(
                "its parser's network runs in OpenVINO and was not loaded "
                "(load it with parser_runtime='torch')"
            )
        if changed:
            raise WeightsError("this pipeline cannot be saved: " + "; ".join(changed))
        return save_pipeline(directory, self.parser, self.gmm, self.tom, self.meta, fp16=fp16)

    # 1-2. The person -----------------------------------------------------------------
    @torch.inference_mode()
    def analyse_person(self, photo: np.ndarray) -> PersonAnalysis:
        """Frame and analyse one shopper photo `(H, W, 3)` uint8 RGB."""
        self.check_photo(photo)
        timer = _Timer()
        with timer.stage("frame"):
            frame, frame_size = framing_window(photo.shape[:2], self.size)
            crop = crop_to_model(photo, frame, frame_size).to(self.device)
            logits = self._network_logits(crop)
            # Framing needs only the outline: the argmax at the network's resolution.
            foreground = (logits[0, : self.parser.num_labels].argmax(0) != 0).cpu().numpy()
            # The network's output is `input_scale` times its input's size.
            scale = foreground.shape[0] / frame_size[0]
            model_height = round(self.size[0] * scale)
            foreground = person_outline(foreground, frame, photo.shape[:2], model_height)
        if foreground.sum() < MIN_PERSON_FRACTION * self.size[0] * self.size[1] * scale**2:
            return self._no_person(photo, timer)
        box = person_box(foreground, frame, self.aspect)
        with timer.stage("parse"):
            if frame_size != self.size or box_iou(box, frame) < 0.9:
                crop = crop_to_model(photo, box, self.size).to(self.device)
                logits = self._network_logits(crop)
            else:
                box = frame
            parse_logits, heatmaps = self._parser_outputs(logits, crop)
            labels = parse_logits.argmax(1)
            keypoints = decode_keypoints(heatmaps)
        with timer.stage("represent"):
            representation = build_representation(crop, labels, keypoints)
        confidence, reason = self.confidence(parse_logits, labels, keypoints)
        return PersonAnalysis(
            photo, box, crop, labels, keypoints, representation, confidence, reason, timer.timings
        )

    def check_photo(self, photo: np.ndarray) -> None:
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise InvalidInputError(
                f"photo must be an (H, W, 3) uint8 RGB array, got {photo.dtype} {photo.shape}; "
                "decode it with tryon.imaging.decode_image"
            )
        if min(photo.shape[:2]) < 32:
            raise InvalidInputError(
                f"photo is {photo.shape[1]}x{photo.shape[0]} pixels; send at least 192x256"
            )

    @staticmethod
    def confidence(
        parse_logits: torch.Tensor, labels: torch.Tensor, keypoints: torch.Tensor
    ) -> tuple[float, str | None]:
        """How sure the parser is, in [0, 1]: its certainty over the person's pixels (mean
        top probability, rescaled so that a coin toss between two labels scores 0) times
        the mean confidence of the nose, neck and shoulders, which the garment is fitted
        to (0 for one the parser reports missing). With the bundled weights, the first 20
        synthetic test photos score 0.81-0.90, a photo of random noise about 0.1, and an
        empty wall 0 (no person found, also when the crop's parse has no person pixels)."""
        person = labels[0] != 0
        if not person.any():  # the framing pass saw someone, the close look nobody
            return 0.0, "no person found in the photo"
        probability = parse_logits[0].softmax(0).amax(0)[person].mean().item()
        certainty = min(max((probability - 0.5) / 0.5, 0.0), 1.0)
        core = keypoints[0, list(CORE_KEYPOINTS), 2].clamp(0, 1).mean().item()
        # 0 is reserved for "no person at all" (`_no_person`); a found one scores above it.
        confidence = max(certainty * core, MIN_FOUND_CONFIDENCE)
        if core < 0.45:
            return confidence, "no person with a visible neck and shoulders was found"
        if certainty < 0.5:
            return confidence, "the person's outline is unclear (busy scene or unusual pose)"
        return confidence, None

    def _no_person(self, photo, timer) -> PersonAnalysis:
        frame = whole_photo_box(photo.shape[:2], self.aspect)
        crop = crop_to_model(photo, frame, self.size).to(self.device)
        labels = torch.zeros((1, *self.size), dtype=torch.long, device=self.device)
        keypoints = torch.zeros((1, 18, 3), device=self.device)
        representation = build_representation(crop, labels, keypoints)
        return PersonAnalysis(
            photo,
            frame,
            crop,
            labels,
            keypoints,
            representation,
            0.0,
            "no person found in the photo",
            timer.timings,
        )

    # 3. The garment ------------------------------------------------------------------
    def prepare_garments(
        self, images: list[np.ndarray], masks: list[np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Product photos `(H, W, 3)` uint8 and masks `(H, W)` uint8 -> `(B, 3, h, w)` in
        [-1, 1] and `(B, 1, h, w)` in [0, 1] at model resolution (stretched, as VITON's
        product photos already have the model's aspect).

        NumPy and OpenCV only, no torch kernels: the server prepares catalog garments on
        other threads than the model's, and torch work on a second thread slows every
        model batch (see `tryon.server.engine`)."""
        for image, mask in zip(images, masks, strict=True):
            if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
                raise InvalidInputError(
                    f"garment image {image.shape} and mask {mask.shape}: expected (H, W, 3) "
                    "and (H, W) of the same size"
                )
        pixels = np.stack([resize_pixels(image, self.size) for image in images])
        coverage = np.stack([resize_pixels(mask, self.size) for mask in masks])
        garments = pixels.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1
        garment_masks = coverage[:, None].astype(np.float32) / np.float32(255.0)
        return (
            torch.from_numpy(garments).to(self.device),
            torch.from_numpy(garment_masks).to(self.device),
        )

    # 4-6. Warp, synthesize, paste back ------------------------------------------------
    @torch.inference_mode()
    def try_on(
        self, analyses: list[PersonAnalysis], garments: torch.Tensor, garment_masks: torch.Tensor
    ) -> list[TryOnResult]:
        """Put garment i on person i, all pairs in one batch."""
        timer = _Timer()
        rep = _stack([a.network_inputs() for a in analyses])
        with timer.stage("warp"):
            warp = self.warp_onto(rep, garments, garment_masks)
        with timer.stage("synthesize"):
            output = self.render(rep, warp.warped_garment, warp.warped_mask)
            final, region = self.dress(rep, warp, output)
        results = []
        with timer.stage("paste_back"):
            for index, analysis in enumerate(analyses):
                alpha = paste_back_alpha(
                    rep.tryon_region[index : index + 1].cpu(),
                    region[index : index + 1].cpu(),
                    self.size,
                )
                image = paste_back(
                    analysis.photo, final[index : index + 1].cpu(), alpha, analysis.box
                )
                model_image = tensor_to_image(final[index : index + 1].cpu())[0]
                results.append((image, model_image, alpha))
        share = {k: v / len(analyses) for k, v in timer.timings.items()}
        return [
            TryOnResult(
                image,
                model_image,
                analysis.confidence,
                {**analysis.timings, **share},
                alpha,
                analysis.box,
            )
            for (image, model_image, alpha), analysis in zip(results, analyses, strict=True)
        ]

    def warp_onto(
        self, rep: PersonRepresentation, garments: torch.Tensor, garment_masks: torch.Tensor
    ) -> GmmOutput:
        """The GMM's warp of garments `(B, 3, H, W)` and their masks `(B, 1, H, W)` onto
        `rep`'s people `(B, ...)`, handed their representation in the networks' layout."""
        return self.warp(rep.gmm_input(self.memory_format), garments, garment_masks)

    def render(
        self, rep: PersonRepresentation, warped_garment: torch.Tensor, warped_mask: torch.Tensor
    ) -> TomOutput:
        """The TOM on `rep`'s people `(B, ...)` and their warped garments `(B, 3, H, W)`,
        `(B, 1, H, W)`, given the background fill when the TOM shows it."""
        background = rep.background_fill() if self.tom.shows_background else None
        return self.synthesize(
            rep.tom_input(self.memory_format), warped_garment, warped_mask, background
        )

    def dress(
        self, rep: PersonRepresentation, warp: GmmOutput, output: TomOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The try-on `(B, 3, H, W)` in [-1, 1] at model resolution and the region it
        painted `(B, 1, H, W)`: the TOM's composite inside `rep`'s try-on region, less the
        shopper's arms that the warped garment leaves bare when `keep_arms`
        (`PersonRepresentation.repainted_region`); the photo everywhere else."""
        region = rep.repainted_region(warp.warped_mask if self.keep_arms else None)
        return rep.dressed(output.composite, region), region

    def __call__(
        self, photo: np.ndarray, garment: np.ndarray, garment_mask: np.ndarray
    ) -> TryOnResult:
        """Try one garment on one photo."""
        analysis = self.analyse_person(photo)
        garments, masks = self.prepare_garments([garment], [garment_mask])
        return self.try_on([analysis], garments, masks)[0]


def paste_back_alpha(
    tryon_region: torch.Tensor, painted: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """How much of the model-resolution try-on to blend into the photo, `(1, 1, h, w)` in
    [0, 1], from the try-on region and the part of it that was painted (both `(1, 1, h, w)`
    in {0, 1}, on the CPU). The try-on region's outer edge is feathered over 1.5% of the height, as
    the photo around it is the shopper's own. Where a kept arm meets the painted region, the
    painted side stays whole (the photo under it is the old garment) and only the arm's side
    is feathered."""
    radius = 0.015 * size[0]
    return torch.maximum(feather(tryon_region, radius) * painted, feather(painted, radius))


def _stack(reps: list[PersonRepresentation]) -> PersonRepresentation:
    fields = PersonRepresentation.__dataclass_fields__
    return PersonRepresentation(
        **{name: torch.cat([getattr(r, name) for r in reps]) for name in fields}
    )


def _framing_inputs(size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The parser's input shapes `(1, 3, h, w)` of the framing pass on common photo shapes
    for a model of `size` (`tryon.framing.common_framing_sizes`)."""
    return [(1, 3, *framing_size) for framing_size in common_framing_sizes(size)]
