from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import fit, image

from tryon.labels import NUM_KEYPOINTS, NUM_PARSE_LABELS
from tryon.models import HumanParser, decode_keypoints, decode_parse, keypoint_heatmaps, parser_loss


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
