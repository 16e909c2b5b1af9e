"""How each network trains: the human parser, the GMM and the TOM (with its discriminator).

Each trainer builds its networks and optimisers, takes one step on a batch from
`VitonDataset` and draws a grid of what it currently makes of a fixed batch. Person
representations come from the dataset's own parse and keypoints, as in CP-VTON, or, with
a frozen `parsed_by` parser (a recipe's `parsed_by:`), from that parser's prediction on
the photo, as `TryOnPipeline` builds them in production; the losses' targets (the worn
garment, the photo) come from the dataset either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from tryon.compositing import paste_into_region
from tryon.data.batches import Batch
from tryon.eval import metrics as M
from tryon.labels import NUM_PARSE_LABELS
from tryon.models import (
    GeometricMatcher,
    GmmOutput,
    HumanParser,
    MultiScaleDiscriminator,
    TomOutput,
    TryOnGenerator,
    decode_keypoints,
    decode_parse,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    gmm_loss,
    in_precision,
    keypoint_heatmaps,
    parser_loss,
)
from tryon.models.gmm import GRID_WEIGHT
from tryon.models.losses import soft_dice_loss
from tryon.representation import (
    GMM_PERSON_CHANNELS,
    TOM_PERSON_CHANNELS,
    PersonRepresentation,
    build_representation,
    upper_garment_region,
    visible_background,
)
from tryon.train.grids import image_grid, parse_to_rgb, skeleton_overlay

PYRAMID = (4, 16)  # GMM loss also at 1/4 and 1/16 resolution
GMM_MAX_GRAD_NORM = 0.5
# The TOM's one-layer background head learns this many times faster than the rest: grown
# onto a trained TOM, it starts from nothing at the small rate that fine-tunes it
# (1e-5-1e-4), where a single 3x3 layer would take thousands of steps to matter.
HEAD_LR_FACTOR = 100.0


def _adam(
    net: torch.nn.Module, lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Optimizer:
    return torch.optim.AdamW(net.parameters(), lr=lr, betas=betas, weight_decay=1e-4)


def _tom_adam(tom: TryOnGenerator, lr: float) -> torch.optim.Optimizer:
    """The TOM's optimiser: its background head, if any, in a second group at
    `HEAD_LR_FACTOR` x `lr` (the learning-rate schedule scales both groups alike)."""
    head = tom.background_head
    head_parameters = [] if head is None else list(head.parameters())
    in_heads = {id(p) for p in head_parameters}
    groups = [{"params": [p for p in tom.parameters() if id(p) not in in_heads]}]
    if head_parameters:
        groups.append({"params": head_parameters, "lr": lr * HEAD_LR_FACTOR})
    return torch.optim.AdamW(groups, lr=lr, betas=(0.5, 0.999), weight_decay=1e-4)


def colour_jitter(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random per-image brightness, contrast and colour balance; `(B, 3, H, W)` in [-1, 1]."""
    b = images.shape[0]
    shape = (b, 1, 1, 1)
    gain = 1 + 0.2 * (torch.rand(shape, generator=generator) - 0.5)
    balance = 1 + 0.1 * (torch.rand((b, 3, 1, 1), generator=generator) - 0.5)
    shift = 0.1 * (torch.rand(shape, generator=generator) - 0.5)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * gain.to(images) * balance.to(images) + mean + shift.to(images)
    return out.clamp(-1, 1)


class PersonAnalyst:
    """The person representation the GMM and TOM train on: from the dataset's parse and
    keypoints, or from a frozen parser's prediction on the photo (`parser`).

    Training on the parser's representation teaches the networks the parses they get in
    production (`TryOnPipeline` runs the parser on the shopper's photo), parse errors
    included, instead of the dataset's perfect ones.
    """

    def __init__(
        self,
        device: torch.device,
        parser: HumanParser | None = None,
        precision: torch.dtype = torch.float32,
        source: str | None = None,
    ) -> None:
        self.parser = parser
        self._predict = None
        if parser is not None:
            parser.to(device).eval().requires_grad_(False)
            self._predict = in_precision(parser, precision, device.type)
        # Where the parser came from (the recipe's `parsed_by`), recorded so a resumed run keeps it.
        self.source = source

    @classmethod
    def from_folder(
        cls, folder: Path, device: torch.device, precision: torch.dtype = torch.float32
    ) -> PersonAnalyst:
        """The analyst with the saved parser in `folder` (config.json + model.safetensors)."""
        return cls(device, HumanParser.from_pretrained(folder), precision, source=str(folder))

    @property
    def parsed(self) -> bool:
        """Whether the representation comes from the parser (not the dataset's parse)."""
        return self.parser is not None

    def __call__(self, batch: Batch) -> PersonRepresentation:
        """The representation of `batch["person"]` `(B, 3, H, W)` the networks see."""
        if self.parser is None:
            return build_representation(batch["person"], batch["parse"], batch["keypoints"])
        with torch.no_grad():
            parse_logits, heatmap_logits = self._predict(batch["person"])
        return build_representation(
            batch["person"], decode_parse(parse_logits), decode_keypoints(heatmap_logits)
        )


def worn_garment_region(batch: Batch) -> torch.Tensor:
    """Where the person truly wears the upper garment, from the dataset's parse:
    `(B, 1, H, W)` float in {0, 1}, the target of the warped garment's placement."""
    return upper_garment_region(batch["parse"])


class ParserTrainer:
    """Parse maps (cross-entropy, optionally plus per-label Dice) and keypoint heatmaps
    (weighted BCE) from the photo."""

    name = "parser"
    validation_metric = "parse_miou"

    def __init__(
        self,
        lr: float,
        device: torch.device,
        parser: HumanParser | None = None,
        precision: torch.dtype = torch.float32,
        dice_weight: float = 0.0,
        keypoint_weight: float = 1.0,
    ) -> None:
        self.parser = (parser or HumanParser()).to(device)
        self.predict = in_precision(self.parser, precision, device.type)
        self.networks = {"parser": self.parser}
        self.optimizers = {"parser": _adam(self.parser, lr)}
        self.dice_weight = dice_weight
        self.keypoint_weight = keypoint_weight
        self.loss_settings: dict[str, float] = {
            "dice_weight": dice_weight,
            "keypoint_weight": keypoint_weight,
        }

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        person = colour_jitter(batch["person"])
        parse_logits, heatmap_logits = self.predict(person)
        height, width = person.shape[-2:]
        target = keypoint_heatmaps(batch["keypoints"], height, width)
        loss = parser_loss(
            parse_logits,
            heatmap_logits,
            batch["parse"],
            target,
            heatmap_weight=self.keypoint_weight,
            dice_weight=self.dice_weight,
        )
        self.optimizers["parser"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["parser"].step()
        return {"loss": loss.item()}

    def validate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean IoU over the parse labels present in the held-out batches (`parse_miou`),
        and the keypoints' mean distance from the true ones in pixels (`keypoint_error`,
        over the keypoints the dataset marks visible)."""
        counts = torch.zeros((NUM_PARSE_LABELS, NUM_PARSE_LABELS), dtype=torch.long)
        distances = []
        for batch in batches:
            parse_logits, heatmap_logits = self.predict(batch["person"])
            counts += M.confusion(parse_logits.argmax(1), batch["parse"]).cpu()
            predicted = decode_keypoints(heatmap_logits)
            distances.append(M.visible_keypoint_distances(predicted, batch["keypoints"]).cpu())
        return {
            "parse_miou": M.mean_iou(counts),
            "keypoint_error": float(torch.cat(distances).mean()),
        }

    def sample_grid(self, batch: Batch) -> np.ndarray:
        parse_logits, heatmap_logits = self.predict(batch["person"])
        keypoints = decode_keypoints(heatmap_logits)
        return image_grid(
            [
                batch["person"],
                parse_to_rgb(batch["parse"]),
                parse_to_rgb(decode_parse(parse_logits)),
                skeleton_overlay(batch["person"], keypoints),
            ]
        )

    def save(self, out: Path) -> None:
        self.parser.save_pretrained(out / self.name)


def gmm_targets(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """What the warped garment should look like: the true warp (`warp-gt/`) where the
    dataset has it, else the worn garment's region of the photo (CP-VTON), 0 outside."""
    if "warp_gt" in batch:
        mask = batch["warp_gt_mask"]
        return batch["warp_gt"] * mask, mask
    region = worn_garment_region(batch)
    return batch["person"] * region, region


def gmm_training_loss(output: GmmOutput, batch: Batch, grid_weight: float) -> torch.Tensor:
    """The GMM's training loss (scalar): `gmm_loss` to `gmm_targets`, the Dice overlap of
    the masks, and both again at the coarser `PYRAMID` scales."""
    target, target_mask = gmm_targets(batch)
    loss = gmm_loss(output, target, target_mask, grid_weight=grid_weight)
    # The same L1s on coarser copies: a misplaced garment overlaps its target there,
    # so the loss pulls it towards the body from far away, not only at the edges.
    # L1 alone prefers a shrunken garment while the warp is still off (less area to get
    # wrong); the Dice overlap of the masks does not, and pulls the size right.
    loss = loss + soft_dice_loss(output.warped_mask, target_mask)
    for factor in PYRAMID:
        pooled = [
            F.avg_pool2d(t, factor)
            for t in (output.warped_garment, output.warped_mask, target, target_mask)
        ]
        loss = loss + F.l1_loss(pooled[0], pooled[2]) + F.l1_loss(pooled[1], pooled[3])
        loss = loss + soft_dice_loss(pooled[1], pooled[3])
    return loss


class GmmTrainer:
    """The geometric matching module: L1 to the worn garment plus grid regularisation,
    on the representation `analyst` gives (the dataset's parse by default)."""

    name = "gmm"

    def __init__(
        self,
        lr: float,
        device: torch.device,
        gmm: GeometricMatcher | None = None,
        grid_weight: float = GRID_WEIGHT,
        precision: torch.dtype = torch.float32,
        analyst: PersonAnalyst | None = None,
    ) -> None:
        self.gmm = (gmm or GeometricMatcher(person_channels=GMM_PERSON_CHANNELS)).to(device)
        self.warp = in_precision(self.gmm, precision, device.type)
        self.analyst = analyst or PersonAnalyst(device)
        self.networks = {"gmm": self.gmm}
        self.optimizers = {"gmm": _adam(self.gmm, lr)}
        self.grid_weight = grid_weight
        self.validation_metric = "warp_iou_parsed" if self.analyst.parsed else "warp_iou"

    @property
    def loss_settings(self) -> dict[str, float | str | None]:
        return {"grid_weight": self.grid_weight, "parsed_by": self.analyst.source}

    def _warp(self, batch: Batch):
        rep = self.analyst(batch)
        return rep, self.warp(rep.gmm_input(), batch["cloth"], batch["cloth_mask"])

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        _, output = self._warp(batch)
        loss = gmm_training_loss(output, batch, self.grid_weight)
        self.optimizers["gmm"].zero_grad(set_to_none=True)
        loss.backward()
        # A warp that lands off the garment samples zeros and gets no gradient back: clip
        # so one bad batch cannot throw the control points there.
        torch.nn.utils.clip_grad_norm_(self.gmm.parameters(), GMM_MAX_GRAD_NORM)
        self.optimizers["gmm"].step()
        return {"loss": loss.item()}

    def validate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean IoU of the warped garment's mask with the worn garment's region."""
        scores = []
        for batch in batches:
            _, output = self._warp(batch)
            scores.append(M.mask_iou(output.warped_mask, worn_garment_region(batch)))
        return {self.validation_metric: float(torch.cat(scores).nanmean())}

    def sample_grid(self, batch: Batch) -> np.ndarray:
        rep, output = self._warp(batch)
        target, _ = gmm_targets(batch)
        overlay = paste_into_region(output.warped_garment, rep.agnostic, output.warped_mask)
        return image_grid([batch["person"], batch["cloth"], output.warped_garment, target, overlay])

    def save(self, out: Path) -> None:
        self.gmm.save_pretrained(out / self.name)


def background_mask_loss(
    background_mask: torch.Tensor, rep: PersonRepresentation, batch: Batch
) -> torch.Tensor:
    """Binary cross-entropy of the TOM's background mask `(B, 1, H, W)` against where the
    dataset's parse shows background inside the try-on region (`visible_background`),
    averaged over that region. Its gradient on the head's logits is the mask's error, so
    a head that starts almost closed still learns."""
    region = rep.tryon_region
    target = visible_background(batch["parse"], batch["keypoints"], region)
    probability = background_mask.float().clamp(1e-6, 1 - 1e-6)
    loss = F.binary_cross_entropy(probability, target, reduction="none")
    return (loss * region).sum() / region.sum().clamp_min(1)


def region_ssim_loss(final: torch.Tensor, real: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """1 - SSIM averaged over the pixels of `region` (`(B, 1, H, W)` in {0, 1}), as a scalar;
    images `(B, 3, H, W)` in [-1, 1]. The SSIM is the evaluation's (`region_ssim`)."""
    return M.masked_mean(1 - M.ssim_map(final, real), region).nanmean()


class TomPass(NamedTuple):
    """One forward pass of `TomTrainer`: the representation, the GMM's warp, the
    discriminator's condition `(B, 22 + 4, H, W)` and the TOM's output; `final` and
    `dressed` are the try-ons made from them."""

    rep: PersonRepresentation
    warp: GmmOutput
    condition: torch.Tensor
    output: TomOutput

    @property
    def final(self) -> torch.Tensor:
        """`(B, 3, H, W)`: the TOM's paint over the whole try-on region, arms included (what
        its losses score: the pipeline keeps the arms the new garment leaves bare, but must
        paint the skin a shorter garment uncovers, and all of it with --repaint-arms)."""
        return self.rep.dressed(self.output.composite, self.rep.tryon_region)

    @property
    def dressed(self) -> torch.Tensor:
        """`(B, 3, H, W)`: the try-on as the pipeline shows it, the bare arms kept from the
        photo (what validation scores)."""
        region = self.rep.repainted_region(self.warp.warped_mask)
        return self.rep.dressed(self.output.composite, region)


class TomTrainer:
    """The try-on module as a conditional GAN on the frozen GMM's warps (or, with
    `tune_gmm`, on the GMM's warps as it is fine-tuned beside it).

    Generator loss: L1 + SSIM to the photo (both averaged over the try-on region, which the
    TOM learns to paint whole, arms included), composition-mask L1
    to the warped garment's visible part, hinge adversarial loss from a two-scale PatchGAN
    that sees the generator's input, and discriminator feature matching. With both GAN
    weights at 0 the discriminator is not trained and the TOM learns from L1 + SSIM + mask
    alone.

    With `tune_gmm` (a weight) the GMM trains too: the generator loss reaches it through
    the warp (where the garment's texture lands, judged by the final image), and
    `tune_gmm` times its own training loss (`gmm_training_loss`) keeps it on the worn
    garment. Both networks are saved then (out/tom, out/gmm), to be packed together.

    Both see the representation `analyst` gives (the dataset's parse by default); the TOM
    paints, and its losses score, the try-on region of that representation. Validation
    scores the try-on as the pipeline shows it, with the bare arms kept (`TomPass`).
    """

    name = "tom"

    def __init__(
        self,
        lr: float,
        device: torch.device,
        gmm: GeometricMatcher,
        tom: TryOnGenerator | None = None,
        adversarial_weight: float = 0.1,
        feature_weight: float = 1.0,
        ssim_weight: float = 1.0,
        precision: torch.dtype = torch.float32,
        tune_gmm: float | None = None,
        analyst: PersonAnalyst | None = None,
        discriminator_lr_ratio: float = 1.0,
        spectral_norm: bool = False,
    ) -> None:
        self.tune_gmm = tune_gmm
        self.analyst = analyst or PersonAnalyst(device)
        self.validation_metric = (
            "region_ssim_parsed" if self.analyst.parsed else "region_ssim_gt_parse"
        )
        self.gmm = gmm.to(device)
        if tune_gmm is None:
            self.gmm.eval().requires_grad_(False)
        self.tom = (tom or TryOnGenerator(person_channels=TOM_PERSON_CHANNELS)).to(device)
        self.discriminator = MultiScaleDiscriminator(
            condition_channels=TOM_PERSON_CHANNELS + 4,
            base_channels=16,
            max_channels=64,
            spectral_norm=spectral_norm,
        ).to(device)
        self.warp = in_precision(self.gmm, precision, device.type)
        self.generate = in_precision(self.tom, precision, device.type)
        self.discriminate = in_precision(self.discriminator, precision, device.type)
        self.networks = {"tom": self.tom, "discriminator": self.discriminator}
        self.optimizers = {
            "tom": _tom_adam(self.tom, lr),
            "discriminator": _adam(self.discriminator, lr * discriminator_lr_ratio, (0.5, 0.999)),
        }
        if tune_gmm is not None:
            self.networks["gmm"] = self.gmm
            self.optimizers["gmm"] = _adam(self.gmm, lr)
        self.adversarial_weight = adversarial_weight
        self.feature_weight = feature_weight
        self.ssim_weight = ssim_weight
        self.discriminator_lr_ratio = discriminator_lr_ratio
        self.spectral_norm = spectral_norm

    @property
    def loss_settings(self) -> dict[str, float | bool | str | None]:
        return {
            "adversarial_weight": self.adversarial_weight,
            "feature_weight": self.feature_weight,
            "discriminator_lr_ratio": self.discriminator_lr_ratio,
            "spectral_norm": self.spectral_norm,
            "ssim_weight": self.ssim_weight,
            "tune_gmm": self.tune_gmm,
            "parsed_by": self.analyst.source,
        }

    @property
    def uses_discriminator(self) -> bool:
        return self.adversarial_weight > 0 or self.feature_weight > 0

    def _generate(self, batch: Batch) -> TomPass:
        rep = self.analyst(batch)
        with contextlib.nullcontext() if self.tune_gmm is not None else torch.no_grad():
            warp = self.warp(rep.gmm_input(), batch["cloth"], batch["cloth_mask"])
        person = rep.tom_input()
        condition = torch.cat((person, warp.warped_garment, warp.warped_mask), 1)
        background = rep.background_fill() if self.tom.shows_background else None
        output = self.generate(person, warp.warped_garment, warp.warped_mask, background)
        return TomPass(rep, warp, condition, output)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        generated = self._generate(batch)
        rep, warp, condition, output = generated
        final = generated.final
        real = batch["person"]
        region = rep.tryon_region
        # Outside the try-on region the result is the photo itself, so L1 and SSIM are
        # averaged over the region only (a whole-image mean would shrink their gradients
        # by the region's share of the image).
        l1 = ((final - real).abs() * region).sum() / (3 * region.sum()).clamp_min(1)
        ssim = region_ssim_loss(final, real, region)
        visible_garment = warp.warped_mask * worn_garment_region(batch)
        mask_l1 = F.l1_loss(output.composition_mask, visible_garment)
        g_loss = l1 + self.ssim_weight * ssim + mask_l1
        terms = {"l1": l1, "ssim": ssim, "mask": mask_l1}
        if output.background_mask is not None:
            terms["background"] = background_mask_loss(output.background_mask, rep, batch)
            g_loss = g_loss + terms["background"]
        if self.tune_gmm is not None:
            warp_loss = gmm_training_loss(warp, batch, GRID_WEIGHT)
            g_loss = g_loss + self.tune_gmm * warp_loss
            terms["warp"] = warp_loss
        if self.uses_discriminator:
            gan_terms = self._discriminator_step(condition, real, final)
            g_loss = (
                g_loss
                + self.adversarial_weight * gan_terms["adv"]
                + self.feature_weight * gan_terms["fm"]
            )
            terms.update(gan_terms)
        # The TOM's optimiser, and the GMM's when it is tuned: all but the discriminator's.
        generators = [opt for name, opt in self.optimizers.items() if name != "discriminator"]
        for optimizer in generators:
            optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        if self.tune_gmm is not None:
            torch.nn.utils.clip_grad_norm_(self.gmm.parameters(), GMM_MAX_GRAD_NORM)
        for optimizer in generators:
            optimizer.step()
        terms["loss"] = g_loss
        return {name: value.item() for name, value in terms.items()}

    def _discriminator_step(
        self, condition: torch.Tensor, real: torch.Tensor, final: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Train the discriminator one step; return the generator's GAN terms on `final`
        (adversarial, feature matching, with gradients) and the discriminator's loss."""
        d_opt = self.optimizers["discriminator"]
        # The condition holds the GMM's warp: with `tune_gmm` it carries the GMM's graph,
        # which the generator's backward pass needs, so the discriminator sees it detached.
        condition = condition.detach()
        real_view = self.discriminate(condition, real)
        d_loss = discriminator_loss(real_view, self.discriminate(condition, final.detach()))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        # Feature matching reuses the real activations from the discriminator step.
        fake_view = self.discriminate(condition, final)
        return {
            "adv": generator_adversarial_loss(fake_view),
            "fm": feature_matching_loss(real_view, fake_view),
            "d": d_loss.detach(),
        }

    def validate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean SSIM of the try-on, as the pipeline shows it (bare arms kept), against the
        photo inside the scored try-on region (upper clothes and arms of the dataset's
        parse, dilated), at model resolution, on the representation the TOM trains on (the
        dataset's parse, or the parser's); the step kept is chosen by it. Logged beside it,
        the scores that see texture: `painted_ssim` and `region_sharpness` on the pixels
        painted there (the kept arms left out), and `region_gmsd`."""
        scores: dict[str, list[torch.Tensor]] = {}
        for batch in batches:
            generated = self._generate(batch)
            final, person = generated.dressed, batch["person"]
            region = M.scoring_region(batch["parse"])
            painted = region * generated.rep.repainted_region(generated.warp.warped_mask)
            for name, value in (
                (self.validation_metric, M.region_ssim(final, person, region)),
                ("painted_ssim", M.region_ssim(final, person, painted)),
                ("region_sharpness", M.region_sharpness(final, person, painted)),
                ("region_gmsd", M.region_gmsd(final, person, region)),
            ):
                scores.setdefault(name, []).append(value)
        return {name: float(torch.cat(values).nanmean()) for name, values in scores.items()}

    def sample_grid(self, batch: Batch) -> np.ndarray:
        generated = self._generate(batch)
        rep, warp, _, output = generated
        final = generated.dressed
        columns = [
            batch["person"],
            batch["cloth"],
            warp.warped_garment,
            rep.agnostic,
            output.composition_mask * 2 - 1,
            final,
        ]
        if output.background_mask is not None:
            columns.insert(-1, output.background_mask * 2 - 1)
        return image_grid(columns)

    def save(self, out: Path) -> None:
        self.tom.save_pretrained(out / self.name)
        if self.tune_gmm is not None:
            self.gmm.save_pretrained(out / "gmm")
