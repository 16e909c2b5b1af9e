"""TryOnPipeline: framing, sizes, paste-back, batching and confidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tryon.data.synth import generate_sample, render_garment
from tryon.errors import InvalidInputError, WeightsError
from tryon.framing import feather, paste_back
from tryon.models import GeometricMatcher, HumanParser, PipelineMeta, TryOnGenerator
from tryon.pipeline import BUNDLED_WEIGHTS, TryOnPipeline, paste_back_alpha, weights_folder


@pytest.fixture(scope="module")
def tiny_pipeline() -> TryOnPipeline:
    torch.manual_seed(0)
    return TryOnPipeline(
        HumanParser(encoder_name="tu-regnetx_002", decoder_channels=(16, 16, 8, 8, 8)),
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        TryOnGenerator(base_channels=8, depth=4, max_channels=32),
        PipelineMeta(name="tiny", licence="test", training_data="none"),
        precision="float32",  # exact comparisons below; bfloat16 has its own test
    )


@pytest.fixture(scope="module")
def garment():
    return render_garment(3, 1)


def test_output_keeps_the_photo_size_and_aspect(tiny_pipeline, garment):
    photo = np.full((300, 520, 3), 200, np.uint8)  # landscape, not the model's aspect
    photo[40:280, 200:320] = 90  # something person-sized in the middle
    result = tiny_pipeline(photo, *garment)
    assert result.image.shape == photo.shape
    assert result.model_image.shape == (256, 192, 3)
    assert set(result.timings) >= {"frame", "warp", "synthesize", "paste_back"}


def test_paste_back_changes_only_the_try_on_region(tiny_pipeline, garment):
    photo = generate_sample(2, 0, (512, 384)).person
    analysis = tiny_pipeline.analyse_person(photo)
    garments, masks = tiny_pipeline.prepare_garments([garment[0]], [garment[1]])
    result = tiny_pipeline.try_on([analysis], garments, masks)[0]
    # Where the analysed region lands in the photo (feathered edge included).
    region = analysis.representation.tryon_region.cpu()
    reach = paste_back(
        np.zeros_like(photo),
        torch.ones(1, 3, *region.shape[-2:]),
        feather(region, 0.015 * 256),
        analysis.box,
    )
    changed = np.any(result.image != photo, axis=-1)
    assert changed.any()
    assert not (changed & (reach.max(-1) == 0)).any()


def test_one_analysis_serves_several_garments(tiny_pipeline):
    photo = generate_sample(2, 1).person
    analysis = tiny_pipeline.analyse_person(photo)
    images, masks = zip(*(render_garment(5, i) for i in range(3)), strict=True)
    garments, garment_masks = tiny_pipeline.prepare_garments(list(images), list(masks))
    results = tiny_pipeline.try_on([analysis] * 3, garments, garment_masks)
    assert len(results) == 3
    assert not np.array_equal(results[0].model_image, results[1].model_image)


def test_a_cached_analysis_is_small_and_dresses_the_same(tiny_pipeline, garment):
    photo = generate_sample(2, 3).person
    analysis = tiny_pipeline.analyse_person(photo)
    compact = analysis.for_cache()
    garments, masks = tiny_pipeline.prepare_garments([garment[0]], [garment[1]])

    full_result = tiny_pipeline.try_on([analysis], garments, masks)[0]
    restored_result = tiny_pipeline.try_on([compact.restore(photo)], garments, masks)[0]

    held = sum(t.numel() * t.element_size() for t in (compact.person, compact.parse))
    full = sum(t.numel() * t.element_size() for t in (analysis.person, analysis.parse))
    assert compact.photo is None and compact.representation is None
    assert held * 4 <= full
    assert np.array_equal(full_result.image, restored_result.image)


def test_bad_photo_is_rejected_with_a_clear_error(tiny_pipeline, garment):
    with pytest.raises(InvalidInputError, match="uint8 RGB"):
        tiny_pipeline(np.zeros((256, 192), np.float32), *garment)


def test_unknown_weights_name_lists_the_bundled_ones():
    with pytest.raises(WeightsError, match="bundled names"):
        weights_folder("no-such-weights")


def test_save_and_load_round_trip(tmp_path, tiny_pipeline, garment):
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = TryOnPipeline.from_pretrained(tmp_path / "pipe", precision="float32")
    photo = generate_sample(2, 2).person
    a, b = tiny_pipeline(photo, *garment), loaded(photo, *garment)
    assert np.array_equal(a.image, b.image)


def test_a_loaded_pipeline_runs_folded_and_says_how_to_save_it(tmp_path, tiny_pipeline):
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = TryOnPipeline.from_pretrained(tmp_path / "pipe", precision="bfloat16")

    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.tom.modules())
    with pytest.raises(WeightsError, match="fold=False.*precision='float32'"):
        loaded.save_pretrained(tmp_path / "again")
    exact = TryOnPipeline.from_pretrained(tmp_path / "pipe", fold=False, precision="float32")
    exact.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "pipeline.json").exists()


needs_bundled = pytest.mark.skipif(
    not (BUNDLED_WEIGHTS / "synthetic" / "pipeline.json").exists(),
    reason="bundled synthetic weights not present",
)


@needs_bundled
def test_bundled_weights_try_on_a_committed_sample_close_to_its_ground_truth():
    from pathlib import Path

    from tryon.eval import metrics as M
    from tryon.imaging import decode_image, image_to_tensor

    samples = Path(__file__).parent / "fixtures" / "pipeline"
    photo = decode_image(samples / "person.jpg")
    cloth = decode_image(samples / "cloth.jpg")
    mask = decode_image(samples / "cloth-mask.png")[..., 0]
    result = TryOnPipeline.from_pretrained("synthetic")(photo, cloth, mask)
    score = float(M.ssim(image_to_tensor(result.image), image_to_tensor(photo))[0])
    # Untrained networks score about 0.55 whole-image SSIM on synthetic pairs (the region is
    # noise); the bundled weights keep everything outside the try-on region and paint the
    # garment's colours inside it. 0.7 separates the two with a wide margin on both sides.
    assert score > 0.7
    assert result.confidence > 0.5


@needs_bundled
def test_bfloat16_networks_dress_the_photo_as_float32_ones_do():
    photo, cloth, mask = generate_sample(5, 7).person, *render_garment(4, 2)
    results = {
        precision: TryOnPipeline.from_pretrained("synthetic", precision=precision)(
            photo, cloth, mask
        )
        for precision in ("float32", "bfloat16")
    }
    difference = np.abs(
        results["float32"].image.astype(np.int16) - results["bfloat16"].image.astype(np.int16)
    )
    # The same try-on to the eye: on average a tenth of a grey level apart (measured
    # 0.1), and all but a few edge pixels within 5 of 255.
    assert difference.mean() < 0.5
    assert np.percentile(difference, 99.9) < 20
    assert results["bfloat16"].confidence == pytest.approx(results["float32"].confidence, abs=0.02)


def test_paste_back_keeps_the_painted_side_of_a_kept_arm_s_seam_whole():
    region = torch.zeros(1, 1, 256, 192)
    region[..., 40:200, 40:150] = 1
    painted = region.clone()
    painted[..., 60:180, 120:150] = 0  # a bare arm, kept from the photo
    alpha = paste_back_alpha(region, painted, (256, 192))
    # Painted pixels beside the arm are pasted whole: the photo under them is the old garment.
    assert (alpha[0, 0, 60:180, 100:120] == 1).all()
    assert alpha[0, 0, 100, 121] > 0  # the arm's side of the seam is feathered
    assert (alpha[0, 0, 100, 130:140] == 0).all()  # and the arm itself is the photo's
    # The try-on region's outer edge is feathered as before.
    plain = feather(region, 0.015 * 256)
    assert torch.equal(alpha[..., 100, 30:60], plain[..., 100, 30:60])


@needs_bundled
@pytest.mark.parametrize("keep_arms", [True, False])
def test_bare_arms_stay_the_shopper_s_own_unless_asked_to_repaint_them(keep_arms):
    photo, cloth, mask = generate_sample(5, 7).person, *render_garment(4, 2)
    pipeline = TryOnPipeline.from_pretrained("synthetic", keep_arms=keep_arms)
    analysis = pipeline.analyse_person(photo)
    garments, masks = pipeline.prepare_garments([cloth], [mask])
    result = pipeline.try_on([analysis], garments, masks)[0]
    rep = analysis.representation
    warped_mask = pipeline.warp_onto(rep, garments, masks).warped_mask
    bare = (rep.arm_pixels * (warped_mask <= 0.5))[0, 0].bool()
    assert bare.sum() > 100  # the sample's forearms, beside the new garment's short sleeves
    crop = ((analysis.person[0] + 1) * 127.5).round().permute(1, 2, 0).numpy()
    same = np.all(result.model_image[bare.numpy()] == crop[bare.numpy()], axis=-1)
    if keep_arms:
        assert same.all()
    else:  # the try-on module's paint, not a copy of the photo
        assert same.mean() < 0.2


@needs_bundled
def test_bundled_weights_give_low_confidence_without_a_person():
    pipeline = TryOnPipeline.from_pretrained("synthetic")
    rng = np.random.default_rng(0)
    wall = np.clip(rng.normal(180, 12, (256, 192, 3)), 0, 255).astype(np.uint8)
    analysis = pipeline.analyse_person(wall)
    assert analysis.confidence < 0.3
    assert analysis.reason


def test_garment_preparation_runs_no_torch_kernels(tiny_pipeline):
    """The server prepares garments off its model thread; torch kernels there would slow
    every model batch (see tryon.server.engine), so preparation must not run any."""
    image, mask = render_garment(5, 0, (300, 220))
    with RecordedOps() as recorded:
        garments, masks = tiny_pipeline.prepare_garments([image], [mask])
    assert set(recorded.ops) <= {"aten.lift_fresh.default"}  # wrapping NumPy arrays only
    assert garments.shape == (1, 3, *tiny_pipeline.size)
    assert masks.shape == (1, 1, *tiny_pipeline.size)
    assert -1 <= garments.min() < garments.max() <= 1 and 0 <= masks.min() < masks.max() <= 1


class RecordedOps(TorchDispatchMode):
    """Records the name of every torch operator that runs while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_pipeline_parses_with_the_parsers_refiner(precision):
    torch.manual_seed(0)
    parser = HumanParser(decoder_channels=(16, 16, 8, 8, 8), refiner_channels=8)
    parser.refiner.correction.bias.data[13] = 1e3  # a refiner that sees faces everywhere
    pipeline = TryOnPipeline(
        parser,
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        TryOnGenerator(base_channels=8, depth=4, max_channels=32),
        PipelineMeta(name="tiny", licence="test", training_data="none"),
        precision=precision,
    )
    analysis = pipeline.analyse_person(generate_sample(0, 1).person)
    assert (analysis.parse == 13).all()


def test_a_tom_that_shows_the_background_gets_the_photo_s_background_fill(garment):
    torch.manual_seed(0)
    tom = TryOnGenerator(base_channels=8, depth=4, max_channels=32, background=True)
    with torch.no_grad():
        tom.background_head.bias.fill_(30.0)  # shows the background everywhere
    pipeline = TryOnPipeline(
        HumanParser(encoder_name="tu-regnetx_002", decoder_channels=(16, 16, 8, 8, 8)),
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        tom,
        PipelineMeta(name="tiny", licence="test", training_data="none"),
        precision="float32",
        keep_arms=False,  # the whole try-on region shows the fill, bare arms included
    )
    photo = generate_sample(2, 0, (512, 384)).person
    analysis = pipeline.analyse_person(photo)
    garments, masks = pipeline.prepare_garments([garment[0]], [garment[1]])
    result = pipeline.try_on([analysis], garments, masks)[0]
    rep = analysis.representation
    region = rep.tryon_region[0, 0].bool()
    assert region.any()
    fill = rep.background_fill()[0]
    model_image = torch.from_numpy(result.model_image).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(model_image[:, region], fill[:, region], atol=1 / 127.5 + 1e-6)
