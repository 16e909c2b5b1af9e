"""The networks: human parser, geometric matcher (GMM), try-on generator (TOM), discriminator."""

from __future__ import annotations

from tryon.models.bundle import (
    DatasetRecord,
    NetworkTraining,
    PipelineComponents,
    PipelineMeta,
    TrainingRecord,
    load_pipeline_components,
    save_pipeline,
)
from tryon.models.checkpoint import PretrainedMixin
from tryon.models.discriminator import (
    MultiScaleDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from tryon.models.folding import fold_batch_norms
from tryon.models.gmm import GeometricMatcher, GmmOutput, gmm_loss, grid_regularisation
from tryon.models.parser import (
    HumanParser,
    decode_keypoints,
    decode_parse,
    keypoint_heatmaps,
    parser_loss,
)
from tryon.models.precision import (
    PRECISIONS,
    in_precision,
    precision_name,
    resolve_precision,
    store_weights_in,
)
from tryon.models.tom import TomOutput, TryOnGenerator, compose
from tryon.models.tps import regular_grid, warp_tps

__all__ = [
    "PRECISIONS",
    "DatasetRecord",
    "GeometricMatcher",
    "GmmOutput",
    "HumanParser",
    "MultiScaleDiscriminator",
    "NetworkTraining",
    "PipelineComponents",
    "PipelineMeta",
    "PretrainedMixin",
    "TomOutput",
    "TrainingRecord",
    "TryOnGenerator",
    "compose",
    "decode_keypoints",
    "decode_parse",
    "discriminator_loss",
    "feature_matching_loss",
    "fold_batch_norms",
    "generator_adversarial_loss",
    "gmm_loss",
    "grid_regularisation",
    "in_precision",
    "keypoint_heatmaps",
    "load_pipeline_components",
    "parser_loss",
    "regular_grid",
    "precision_name",
    "resolve_precision",
    "save_pipeline",
    "store_weights_in",
    "warp_tps",
]
