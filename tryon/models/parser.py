"""The human parser: LIP-20 parse map and COCO-18 keypoints from a shopper photo.

One segmentation-models-pytorch network predicts both: its head has one channel per parse
label (logits, softmax over labels) and one per keypoint (heatmap logits, a sigmoid each).
The network runs at `input_scale` times the photo's size and its outputs are resized back,
so callers always get maps at the resolution they passed in. An optional `ParseRefiner`
then corrects the parse at that resolution from the photo itself.

Keypoint coordinates are (x, y) in pixels of the map they were decoded from, with pixel
centres at integers (OpenPose's convention): the top-left pixel's centre is (0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tryon.labels import NUM_KEYPOINTS, NUM_PARSE_LABELS
from tryon.models.checkpoint import PretrainedMixin, grown_copy
from tryon.models.losses import soft_dice_loss

ARCHITECTURES = ("unet", "fpn")
# A heatmap peak below this reports its keypoint missing, as datasets mark one out of frame.
# The parsers peak at 0.2-0.7 on joints just outside the photo, whose heatmaps then lead the
# GMM astray; 0.3 drops almost none that are in the photo (docs/training.md).
KEYPOINT_MIN_CONFIDENCE = 0.3


def build_segmentation_network(
    arch: str,
    encoder_name: str,
    decoder_channels: Sequence[int],
    out_channels: int,
) -> nn.Module:
    """A segmentation-models-pytorch network with a randomly initialised encoder.

    Args:
        arch: "unet" (`decoder_channels`: one width per decoder stage, 5 values) or "fpn"
            (`decoder_channels`: (pyramid width, segmentation width)).
        encoder_name: any encoder segmentation-models-pytorch knows, e.g. "tu-regnetx_002" (timm).
        out_channels: channels of the head's output.
    """
    # Imported here: segmentation-models-pytorch imports timm, torchvision and
    # torch._dynamo (about 1 s), which a parser whose network runs in OpenVINO never needs.
    import segmentation_models_pytorch as smp

    if arch == "unet":
        return smp.Unet(
            encoder_name=encoder_name,
            encoder_weights=None,
            decoder_channels=tuple(decoder_channels),
            classes=out_channels,
        )
    if arch == "fpn":
        pyramid, segmentation = decoder_channels
        return smp.FPN(
            encoder_name=encoder_name,
            encoder_weights=None,
            decoder_pyramid_channels=pyramid,
            decoder_segmentation_channels=segmentation,
            classes=out_channels,
        )
    raise ValueError(f"unknown parser architecture {arch!r}, supported: {list(ARCHITECTURES)}")


class ParseRefiner(nn.Module):
    """Corrects parse logits at the photo's full resolution, from the photo.

    The U-Net's finest skip connection is at half resolution, so parts two or three pixels
    thick (shoes at 256x192, the edges of arms) come out a pixel off. Three 3x3
    convolutions over the photo (and a 1x1 over the parse's probabilities) predict a
    correction of the logits; the last layer starts at zero, so a refiner added to a
    trained parser starts as a no-op.

    Args:
        num_labels: parse labels L.
        channels: width of the convolutions.
    """

    def __init__(self, num_labels: int, channels: int) -> None:
        super().__init__()
        # Two convolutions summed instead of one over the concatenation: a channel-wise
        # concatenation of channels-last tensors is slow on the CPU.
        self.from_photo = nn.Conv2d(3, channels, 3, padding=1)
        self.from_parse = nn.Conv2d(num_labels, channels, 1, bias=False)
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.correction = nn.Conv2d(channels, num_labels, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, image: torch.Tensor, parse_logits: torch.Tensor) -> torch.Tensor:
        """`image` `(B, 3, H, W)` in [-1, 1] and `parse_logits` `(B, L, H, W)` -> corrected
        logits `(B, L, H, W)`."""
        hidden = self.from_photo(image) + self.from_parse(parse_logits.softmax(dim=1))
        return parse_logits + self.correction(self.features(hidden))


class HumanParser(PretrainedMixin, nn.Module):
    """Parse logits and keypoint heatmap logits for a photo of one person.

    Args:
        arch: "unet" or "fpn" (see `build_segmentation_network`).
        encoder_name: segmentation-models-pytorch encoder; starts from random weights.
        decoder_channels: decoder widths for `arch`.
        input_scale: the network sees the photo resized by this factor (each side rounded
            to a multiple of 32); 0.5 runs it on a quarter of the pixels, at a cost to thin
            parts (arms, shoes); the shipped parsers see the photo whole (1.0).
        num_labels: parse labels (20 for LIP).
        num_keypoints: keypoints (18 for COCO-18).
        refiner_channels: width of a `ParseRefiner` after the network, 0 for none (the
            synthetic parser has 16, the VITON parser none).
        build_network: False leaves the network out (`network` is None, and
            `from_pretrained` skips its weights): for a pipeline that runs it elsewhere
            (`tryon.models.openvino_parser`), which then never imports
            segmentation-models-pytorch; `network_logits` refuses to run.
    """

    stride = 32

    def __init__(
        self,
        arch: str = "unet",
        encoder_name: str = "tu-regnetx_002",
        decoder_channels: Sequence[int] = (64, 32, 32, 16, 16),
        input_scale: float = 1.0,
        num_labels: int = NUM_PARSE_LABELS,
        num_keypoints: int = NUM_KEYPOINTS,
        refiner_channels: int = 16,
        *,
        build_network: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < input_scale <= 1.0:
            raise ValueError(f"input_scale must be in (0, 1], got {input_scale}")
        if refiner_channels < 0:
            raise ValueError(f"refiner_channels must be 0 (none) or more, got {refiner_channels}")
        self.input_scale = input_scale
        self.num_labels = num_labels
        self.network = (
            build_segmentation_network(
                arch, encoder_name, decoder_channels, num_labels + num_keypoints
            )
            if build_network
            else None
        )
        self.refiner = ParseRefiner(num_labels, refiner_channels) if refiner_channels else None

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the parse and the keypoint heatmaps.

        Args:
            image: `(B, 3, H, W)` RGB in [-1, 1], any size.

        Returns:
            parse_logits `(B, num_labels, H, W)` and heatmap_logits `(B, num_keypoints, H, W)`,
            both unnormalised, at the input's size.
        """
        return self.split_outputs(self.network_logits(image), image)

    def network_logits(self, image: torch.Tensor) -> torch.Tensor:
        """The network's raw output at its own resolution: `(B, num_labels + num_keypoints,
        h, w)`, h and w about `input_scale` times the input's. Framing needs no more than
        its parse channels' argmax; `split_outputs` turns it into what `forward` returns
        (it also runs the refiner, if any).

        Args:
            image: `(B, 3, H, W)` RGB in [-1, 1].
        """
        if self.network is None:
            raise RuntimeError(
                "this parser was built without its network (build_network=False): "
                "load it whole to run it in PyTorch"
            )
        return self.network(self.network_input(image))

    @property
    def parts_left_out(self) -> tuple[str, ...]:
        return () if self.network is not None else ("network",)

    def split_outputs(
        self, logits: torch.Tensor, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`network_logits` of `image` `(B, 3, H, W)`, resized to its size and split into
        parse logits `(B, num_labels, H, W)` (corrected by the refiner, if any) and heatmap
        logits `(B, num_keypoints, H, W)`."""
        size = tuple(image.shape[-2:])
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        # A channel slice of a channels-last tensor is not dense, and softmax, sums and
        # reductions over it are slow; one dense copy in the same layout saves 1.5-2 ms of
        # the 11-13 ms that the refiner and the decoding take on two CPU threads.
        layout = (
            torch.channels_last
            if logits.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        parse_logits = logits[:, : self.num_labels].contiguous(memory_format=layout)
        heatmap_logits = logits[:, self.num_labels :].contiguous(memory_format=layout)
        if self.refiner is not None:
            parse_logits = self.refiner(image, parse_logits)
        return parse_logits, heatmap_logits

    def network_input(self, image: torch.Tensor) -> torch.Tensor:
        """`image` `(B, 3, H, W)` resized to what the network sees (`input_scale` times
        its size, each side a multiple of 32); itself when that is its size."""
        height, width = image.shape[-2:]
        network_size = (self._network_side(height), self._network_side(width))
        if network_size == (height, width):
            return image
        return F.interpolate(
            image, size=network_size, mode="bilinear", align_corners=False, antialias=True
        )

    def _network_side(self, side: int) -> int:
        return max(self.stride, round(side * self.input_scale / self.stride) * self.stride)


def add_parse_refiner(parser: HumanParser, channels: int) -> HumanParser:
    """A copy of a trained parser with a `ParseRefiner` of `channels` after its network;
    the refiner starts as a no-op, so the copy parses exactly as `parser` does until it
    learns. In training mode, on `parser`'s device and dtype. Refuses a parser that has a
    refiner already."""
    if parser.refiner is not None:
        raise ValueError("this parser has a refiner already")
    return grown_copy(parser, ("refiner.",), refiner_channels=channels)


def decode_parse(parse_logits: torch.Tensor) -> torch.Tensor:
    """Label map from parse logits `(B, L, H, W)`: `(B, H, W)` int64 labels in [0, L)."""
    return parse_logits.argmax(dim=1)


def decode_keypoints(
    heatmap_logits: torch.Tensor, min_confidence: float = KEYPOINT_MIN_CONFIDENCE
) -> torch.Tensor:
    """Keypoints from heatmap logits: the peak pixel, refined to sub-pixel precision.

    The refinement fits a parabola to the log-heatmap through the peak and its two
    neighbours along each axis, which is exact for a Gaussian peak.

    Args:
        heatmap_logits: `(B, K, H, W)` logits (sigmoid gives the heatmap in [0, 1]).
        min_confidence: a keypoint whose peak is lower is reported missing (confidence 0;
            its x, y stay the peak's), as the datasets mark one outside the photo.

    Returns:
        `(B, K, 3)`: x, y in pixels (pixel centres at integers) and the confidence, the
        heatmap's peak value in [0, 1], or 0 for a missing keypoint.
    """
    batch, joints, height, width = heatmap_logits.shape
    # The sigmoid is monotonic: find the peak on the logits and take logs of just the
    # three samples each fit needs, not of the whole map.
    logits = heatmap_logits.reshape(batch, joints, height * width)
    peak_logit, flat_index = logits.max(dim=-1)
    peak_log = F.logsigmoid(peak_logit)
    peak_y = torch.div(flat_index, width, rounding_mode="floor")
    peak_x = flat_index - peak_y * width

    def refine(peak: torch.Tensor, size: int, step: int) -> torch.Tensor:
        inside = (peak > 0) & (peak < size - 1)
        before = F.logsigmoid(logits.gather(-1, (flat_index - step * inside)[..., None])[..., 0])
        after = F.logsigmoid(logits.gather(-1, (flat_index + step * inside)[..., None])[..., 0])
        curvature = before + after - 2.0 * peak_log
        offset = 0.5 * (before - after) / curvature.clamp(max=-1e-6)
        return peak + torch.where(inside, offset.clamp(-0.5, 0.5), torch.zeros_like(offset))

    x = refine(peak_x, width, 1)
    y = refine(peak_y, height, width)
    confidence = peak_log.exp()
    confidence = confidence * (confidence >= min_confidence)
    return torch.stack((x, y, confidence), dim=-1)


def keypoint_heatmaps(
    keypoints: torch.Tensor, height: int, width: int, sigma: float | None = None
) -> torch.Tensor:
    """Training targets: one Gaussian per visible keypoint.

    Args:
        keypoints: `(B, K, 3)` x, y in pixels (pixel centres at integers), confidence;
            a keypoint with confidence <= 0 is missing and gets an all-zero map.
        sigma: Gaussian standard deviation in pixels; default 1.6% of `height` (4 px at 256).

    Returns:
        `(B, K, height, width)` in [0, 1], peak 1 at each visible keypoint.
    """
    if sigma is None:
        sigma = 0.016 * height
    ys = torch.arange(height, device=keypoints.device, dtype=keypoints.dtype)
    xs = torch.arange(width, device=keypoints.device, dtype=keypoints.dtype)
    dx2 = (xs - keypoints[..., 0:1]).square()[..., None, :]
    dy2 = (ys - keypoints[..., 1:2]).square()[..., :, None]
    maps = torch.exp(-(dx2 + dy2) / (2.0 * sigma * sigma))
    visible = (keypoints[..., 2] > 0).to(maps.dtype)
    return maps * visible[..., None, None]


def parser_loss(
    parse_logits: torch.Tensor,
    heatmap_logits: torch.Tensor,
    parse_target: torch.Tensor,
    heatmap_target: torch.Tensor,
    heatmap_weight: float = 1.0,
    peak_weight: float = 100.0,
    dice_weight: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy on the parse plus peak-weighted binary cross-entropy on the heatmaps,
    plus `dice_weight` times `parse_dice_loss`.

    Args:
        parse_logits: `(B, L, H, W)`; parse_target: `(B, H, W)` int64 labels.
        heatmap_logits: `(B, K, H, W)`; heatmap_target: `(B, K, H, W)` in [0, 1]
            (from `keypoint_heatmaps`).
        heatmap_weight: weight of the heatmap term.
        peak_weight: extra weight of a pixel in proportion to its target; the Gaussians
            cover ~0.2% of a 256x192 map, and unweighted, predicting zero everywhere is
            a deep local minimum.
        dice_weight: weight of the per-label Dice term (0: none).

    Returns:
        Scalar loss.
    """
    parse_term = F.cross_entropy(parse_logits, parse_target)
    if dice_weight:
        parse_term = parse_term + dice_weight * parse_dice_loss(parse_logits, parse_target)
    heatmap_term = F.binary_cross_entropy_with_logits(
        heatmap_logits, heatmap_target, weight=1.0 + peak_weight * heatmap_target
    )
    return parse_term + heatmap_weight * heatmap_term


def parse_dice_loss(parse_logits: torch.Tensor, parse_target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice overlap per label over the whole batch, averaged over the labels the
    target shows.

    Every label present counts the same whatever its size, like the mean IoU it stands in
    for: a 30-pixel shoe weighs as much as the background, which cross-entropy weighs by
    its pixels. Unlike label weights in the cross-entropy, a pixel painted too many costs
    as much as one missed, so rare labels are not over-painted at their borders.

    Args:
        parse_logits: `(B, L, H, W)`; parse_target: `(B, H, W)` int64 labels in [0, L).

    Returns:
        Scalar loss in [0, 1].
    """
    # Labels first: one pair of masks per label, each over the whole batch.
    probabilities = parse_logits.float().softmax(dim=1).transpose(0, 1)
    truth = F.one_hot(parse_target, parse_logits.shape[1]).permute(3, 0, 1, 2).float()
    present = truth.flatten(1).sum(dim=1) > 0
    return soft_dice_loss(probabilities[present], truth[present])
