"""The synthetic try-on data generator: shoppers, garments and exact ground truth.

`generate_sample(seed, index)` renders one sample; `write_dataset` writes many in the
VITON layout; `render_garment` gives just a sample's product photo and mask.
"""

from __future__ import annotations

from tryon.data.synth.sample import SynthSample, generate_sample, render_garment

__all__ = ["SynthSample", "generate_sample", "render_garment"]
