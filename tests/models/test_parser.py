from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_models import fit, image

from tryon.labels import NUM_KEYPOINTS, NUM_PARSE_LABELS
from tryon.models import HumanParser, decode_keypoints, decode_parse, keypoint_heatmaps, parser_loss
from tryon.models.parser import add_parse_refiner, parse_dice_loss

WEIGHTS = Path(__file__).resolve().parents[2] / "tryon" / "weights"


@pytest.mark.parametrize("size", [(256, 192), (128, 96)])
def test_outputs_match_the_input_size_and_backpropagate(
    tiny_parser: HumanParser, size: tuple[int, int]
) -> None:
    photo = image(2, 3, *size).requires_grad_()
    parse_logits, heatmap_logits = tiny_parser(photo)
    assert parse_logits.shape == (2, NUM_PARSE_LABELS, *size)
    assert heatmap_logits.shape == (2, NUM_KEYPOINTS, *size)
    (parse_logits.mean() + heatmap_logits.mean()).backward()
    assert photo.grad is not None and photo.grad.abs().sum() > 0


def test_fpn_architecture_builds() -> None:
    parser = HumanParser(arch="fpn", decoder_channels=(32, 32))
    parse_logits, _ = parser(image(2, 3, 64, 64))
    assert parse_logits.shape == (2, NUM_PARSE_LABELS, 64, 64)


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"supported: \['unet', 'fpn'\]"):
        HumanParser(arch="deeplab")


def test_keypoints_are_recovered_from_their_heatmaps() -> None:
    torch.manual_seed(3)
    height, width = 256, 192
    xy = torch.rand(2, NUM_KEYPOINTS, 2) * torch.tensor([width - 1, height - 1])
    keypoints = torch.cat((xy, torch.ones(2, NUM_KEYPOINTS, 1)), -1)
    keypoints[1, 5, 2] = 0  # not visible
    heatmaps = keypoint_heatmaps(keypoints, height, width)
    decoded = decode_keypoints(torch.logit(heatmaps * 0.98 + 0.01))
    visible = keypoints[..., 2] > 0
    assert (decoded[..., :2] - xy)[visible].abs().max() < 0.05
    assert decoded[1, 5, 2] < 0.02
    assert (decoded[..., 2][visible] > 0.95).all()


def test_a_weak_heatmap_peak_is_reported_missing_at_its_place() -> None:
    keypoints = torch.tensor([[[40.0, 100.0, 1.0], [120.0, 30.0, 1.0]]])
    heatmaps = keypoint_heatmaps(keypoints, 128, 160)
    heatmaps[0, 1] *= 0.25  # a faint peak, as on a joint just outside the photo
    decoded = decode_keypoints(torch.logit(heatmaps * 0.98 + 0.01), min_confidence=0.3)
    assert decoded[0, 0, 2] > 0.95
    assert decoded[0, 1, 2] == 0
    assert (decoded[0, 1, :2] - keypoints[0, 1, :2]).abs().max() < 0.05


def test_keypoint_decoding_survives_resizing_as_the_parser_does() -> None:
    # The parser predicts at half resolution and resizes its logits back up.
    keypoints = torch.tensor([[[40.3, 100.6, 1.0], [0.0, 0.0, 1.0], [95.0, 127.0, 1.0]]])
    small = keypoint_heatmaps(
        keypoints * torch.tensor([0.5, 0.5, 1.0]) - torch.tensor([0.25, 0.25, 0]), 64, 48
    )
    logits = F.interpolate(torch.logit(small * 0.98 + 0.01), size=(128, 96), mode="bilinear")
    decoded = decode_keypoints(logits)
    assert (decoded[..., :2] - keypoints[..., :2]).abs().max() < 0.5


def test_decode_parse_takes_the_most_likely_label() -> None:
    labels = torch.randint(0, NUM_PARSE_LABELS, (2, 16, 12))
    logits = F.one_hot(labels, NUM_PARSE_LABELS).permute(0, 3, 1, 2).float()
    assert torch.equal(decode_parse(logits), labels)


def test_training_steps_lower_the_loss(tiny_parser: HumanParser) -> None:
    photo = image(2, 3, 64, 64)
    parse_target = (photo[:, 0] > 0).long() * 5  # a parse the photo determines
    keypoints = torch.cat(
        (torch.rand(2, NUM_KEYPOINTS, 2) * 63, torch.ones(2, NUM_KEYPOINTS, 1)), -1
    )
    heatmap_target = keypoint_heatmaps(keypoints, 64, 64)

    def loss() -> torch.Tensor:
        return parser_loss(*tiny_parser(photo), parse_target, heatmap_target)

    first, last = fit(tiny_parser, loss, steps=12)
    assert last < 0.8 * first


def _thin_lines(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Photos `(B, 3, 64, 64)` of grey noise crossed by one-pixel white columns, and their
    parse `(B, 64, 64)`: label 18 (a shoe) on the columns, background elsewhere."""
    photo = image(batch, 3, 64, 64) * 0.3
    columns = torch.rand(batch, 1, 1, 64) < 0.15
    photo = torch.where(columns, torch.ones_like(photo), photo)
    return photo, columns[:, 0].expand(batch, 64, 64).long() * 18


def _line_iou_after_training(parser: HumanParser) -> float:
    photo, parse = _thin_lines(4)
    heatmap_target = torch.zeros(4, NUM_KEYPOINTS, 64, 64)
    fit(parser, lambda: parser_loss(*parser(photo), parse, heatmap_target), steps=40, lr=1e-2)
    parser.eval()
    with torch.no_grad():
        predicted = decode_parse(parser(photo)[0]) == 18
    truth = parse == 18
    return ((predicted & truth).sum() / (predicted | truth).sum()).item()


def test_the_refiner_resolves_parts_thinner_than_the_networks_resolution() -> None:
    # At input_scale 0.5 the network never sees a one-pixel column whole; the refiner,
    # which reads the photo at full resolution, can.
    def parser(refiner_channels: int) -> HumanParser:
        torch.manual_seed(0)
        return HumanParser(
            decoder_channels=(16, 16, 8, 8, 8),
            input_scale=0.5,
            refiner_channels=refiner_channels,
        )

    without, refined = _line_iou_after_training(parser(0)), _line_iou_after_training(parser(8))
    assert refined > 0.9 and refined > without + 0.2


def test_an_added_refiner_starts_as_a_no_op_and_is_saved(
    tiny_parser: HumanParser, tmp_path
) -> None:
    tiny_parser.eval()
    grown = add_parse_refiner(tiny_parser, 8).eval()
    photo = image(2, 3, 64, 64)
    with torch.no_grad():
        for before, after in zip(tiny_parser(photo), grown(photo), strict=True):
            assert torch.equal(before, after)
    grown.refiner.correction.bias.data[3] = 1.0  # as if trained
    loaded = HumanParser.from_pretrained(grown.save_pretrained(tmp_path / "parser"))
    assert loaded.config["refiner_channels"] == 8
    with torch.no_grad():
        assert torch.allclose(loaded(photo)[0], grown(photo)[0])
    with pytest.raises(ValueError, match="has a refiner already"):
        add_parse_refiner(grown, 8)


def _confident(labels: torch.Tensor) -> torch.Tensor:
    """Logits `(B, L, H, W)` that predict `labels` `(B, H, W)` with certainty."""
    return F.one_hot(labels, NUM_PARSE_LABELS).permute(0, 3, 1, 2).float() * 50


def test_dice_loss_counts_a_missed_small_part_like_a_missed_large_one() -> None:
    truth = torch.zeros(1, 32, 32, dtype=torch.long)
    truth[:, :16] = 5  # half the image: upper clothes
    truth[:, 30:, :2] = 18  # four pixels: a shoe
    assert parse_dice_loss(_confident(truth), truth).item() == pytest.approx(0.0, abs=1e-6)

    no_shoe, no_shirt = truth.clone(), truth.clone()
    no_shoe[truth == 18] = 0
    no_shirt[truth == 5] = 0
    shoe_missed = parse_dice_loss(_confident(no_shoe), truth).item()
    shirt_missed = parse_dice_loss(_confident(no_shirt), truth).item()
    # Cross-entropy would charge the shirt 128 times the shoe; Dice charges each the
    # label it loses (a third of the three labels), and the background little.
    assert shoe_missed > 0.3 and shirt_missed < 0.5
    assert shoe_missed == pytest.approx(shirt_missed, abs=0.2)


def test_the_dice_weight_adds_the_dice_term_to_the_parser_loss() -> None:
    truth = torch.randint(0, NUM_PARSE_LABELS, (2, 16, 16))
    logits = torch.randn(2, NUM_PARSE_LABELS, 16, 16)
    heatmaps, target = torch.zeros(2, NUM_KEYPOINTS, 16, 16), torch.zeros(2, NUM_KEYPOINTS, 16, 16)
    plain = parser_loss(logits, heatmaps, truth, target)
    with_dice = parser_loss(logits, heatmaps, truth, target, dice_weight=2.0)
    assert with_dice.item() == pytest.approx(
        plain.item() + 2.0 * parse_dice_loss(logits, truth).item(), rel=1e-5
    )


def test_the_defaults_build_the_shipped_parser() -> None:
    """A plain `HumanParser()` is the network the synthetic weights ship (every argument of
    the bundled config.json, which names them all)."""
    bundled = json.loads((WEIGHTS / "synthetic" / "parser" / "config.json").read_text())
    expected = {k: v for k, v in bundled.items() if not k.startswith("_")}
    assert HumanParser().config == expected
