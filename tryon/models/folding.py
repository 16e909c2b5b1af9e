"""Inference-only speed-up: fold batch norms into the convolutions they follow.

In eval mode a batch norm is a fixed per-channel scale and shift, which the preceding
convolution can absorb into its weights and bias; the network then computes the same
function (to float rounding) with one pass over each activation fewer.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(network: nn.Module) -> nn.Module:
    """Fold each batch norm that directly follows a convolution into it, in place.

    Looks inside `nn.Sequential` blocks (ours, smp's decoder) and timm's conv-norm-act
    blocks (`conv` then `bn` attributes). A timm `BatchNormAct2d` leaves its dropout and
    activation behind. Only for inference: returns `network`, switched to eval mode, whose
    batch norms no longer learn.
    """
    network.eval()
    for parent in list(network.modules()):
        applies_in_order = isinstance(parent, nn.Sequential) or (
            isinstance(getattr(parent, "conv", None), nn.Conv2d)
            and isinstance(getattr(parent, "bn", None), nn.BatchNorm2d)
        )
        if not applies_in_order:
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = parent._modules[first], parent._modules[second]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(norm, nn.BatchNorm2d)
                and norm.running_mean is not None
            ):
                parent._modules[first] = fuse_conv_bn_eval(conv, norm)
                parent._modules[second] = _what_follows_the_norm(norm)
    return network


def _what_follows_the_norm(norm: nn.BatchNorm2d) -> nn.Module:
    """Identity for a plain batch norm; timm's BatchNormAct2d keeps its drop and act."""
    rest = [getattr(norm, name) for name in ("drop", "act") if hasattr(norm, name)]
    return nn.Sequential(*rest) if rest else nn.Identity()
