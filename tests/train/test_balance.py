from __future__ import annotations

import numpy as np
import pytest
import torch

from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.labels import BACKGROUND, NUM_PARSE_LABELS, UPPER_CLOTHES
from tryon.models import parser_loss
from tryon.train.balance import balanced_label_weights, label_frequencies


def test_rare_labels_weigh_more_and_the_average_pixel_weighs_one():
    frequencies = torch.tensor([0.6, 0.3, 0.095, 0.005, 0.0])

    weights = balanced_label_weights(frequencies)

    assert weights[3] > weights[2] > weights[1] > weights[0]
    assert weights[4] == 0  # never seen: nothing to learn from
    assert (weights * frequencies).sum().item() == pytest.approx(1.0)
    assert weights.max() / weights[weights > 0].min() < 60  # bounded, unlike 1/frequency


def test_frequencies_come_from_the_datasets_parse_maps(tmp_path):
    write_dataset(tmp_path, n=4, seed=21)
    dataset = VitonDataset(tmp_path, size=(128, 96))

    frequencies = label_frequencies(dataset, NUM_PARSE_LABELS)

    assert frequencies.sum().item() == pytest.approx(1.0)
    assert frequencies[BACKGROUND] > frequencies[UPPER_CLOTHES] > 0
    parse = np.stack([dataset.read_sample(i).parse for i in range(len(dataset))])
    assert frequencies[UPPER_CLOTHES].item() == pytest.approx((parse == UPPER_CLOTHES).mean())


def test_label_weights_shift_the_parse_loss_towards_rare_labels():
    logits = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 2  # one pixel of a rare label, predicted badly
    logits[0, 0] = 5.0
    heatmaps = torch.zeros(1, 1, 4, 4)

    plain = parser_loss(logits, heatmaps, target, heatmaps)
    weighted = parser_loss(
        logits, heatmaps, target, heatmaps, label_weights=torch.tensor([0.5, 1.0, 8.0])
    )

    assert weighted > plain
