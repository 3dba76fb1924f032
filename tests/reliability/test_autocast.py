"""Mixed precision. nnU-Net trains under ``autocast('cuda')`` (float16), which runs softmax, exp, log and sums in
float32 by its own lists; CPU autocast keeps them in float16 or bfloat16, so a CPU run cannot stand for a CUDA run
(``nnunet_ext/reliability/float32_ops.py``). What is checked instead:

* every numerically sensitive computation of ours casts to float32 itself, so it is float32 under any autocast:
  Div-attention's map and its softmax, the dual loss's max pooling and Dice sums, the SeA-blocks' attention
  softmaxes, the paper's weighted BCE, the diagnosis loss (recorded below autocast, at the aten operations);
* every checked trainer's network, with the trainer's own loss, trains under CPU autocast to a finite loss and finite
  gradients wherever nnU-Net's own network and loss do, also with extreme logits: on the 2D plans every trainer in
  bfloat16 and every distinct network build also in float16; on the 3D plans every distinct network build in
  bfloat16 (float16 convolutions and matrix products have no fast CPU kernels: seconds per pass even on tiny
  plans).

Each check first runs one untimed forward and backward pass under autocast: the first bfloat16 backward of a 3x3x3
convolution in a fresh process (oneDNN creating its primitive) gave a non-finite weight gradient in 3 of 4 processes
for CATS's and UNETR's hidden-state upsamplers, and none of the 99 following passes did (2026-12-04, torch 2.14.1 CPU;
a standalone convolution of the same shape did not reproduce it). nnU-Net autocasts on CUDA only, so this CPU kernel
never runs in a user's training."""

import math

import pytest
import torch

from nnunet_ext.architectures.building_blocks.divergence_attention import divergence_attention
from nnunet_ext.architectures.building_blocks.sea_block import SeABlock
from nnunet_ext.losses.dual_dice import DualDiceLoss
from nnunet_ext.losses.segmentation_assisted_diagnosis import diagnosis_loss
from nnunet_ext.losses.weighted_bce_dice import WeightedBCEDiceLoss
from nnunet_ext.reliability.float32_ops import SensitiveOpRecorder
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET
from nnunet_ext.reliability.trainer_stand_up import (batch_for_network, generated_batch,
                                                     segmentation_model_trainer_of,
                                                     segmentation_models_for, stand_up_trainer)
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE

from .conftest import CASE_IDS, CASES

LOW_PRECISION = [torch.bfloat16, torch.float16]

EXTREME_LOGIT_SCALE = 1e3  # network outputs times this: logits of order 1e3-1e4, near float16's range (65504)


def sensitive_ops_under_autocast(dtype, function, *tensors):
    """Run ``function`` on ``tensors`` (cast to ``dtype``, as autocast leaves a preceding layer's output) under CPU
    autocast; returns the recorder."""
    with torch.autocast("cpu", dtype=dtype), SensitiveOpRecorder() as recorder:
        function(*[t.to(dtype) if t.is_floating_point() else t for t in tensors])
    return recorder


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_our_sensitive_computations_run_in_float32_under_autocast(dtype):
    masks = torch.rand(2, 3, 6, 8, 8), torch.rand(2, 3, 6, 8, 8)
    logits, labels = torch.randn(2, 3, 6, 8, 8), torch.randint(0, 3, (2, 1, 6, 8, 8))
    tokens = torch.randn(2, 16, 8)
    sea_block = SeABlock(embed_dim=8, num_heads=2)
    paper_loss = WeightedBCEDiceLoss(gamma=0.5, alpha=1.0, beta=1.0, regions=False, batch_dice=True)
    computations = {
        "Div-attention map": (divergence_attention, masks),
        "dual loss (Dice sums, global max pooling)": (DualDiceLoss(dual=True), (logits, labels)),
        "SeA-block attention": (lambda f_m, f_d: sea_block(f_m, f_d, return_attention=True), (tokens, tokens)),
        "weighted BCE": (paper_loss.weighted_bce, (logits, labels)),
        "diagnosis loss": (diagnosis_loss, (torch.randn(4, 3), torch.tensor([0, 1, 2, 1]))),
    }
    for name, (function, tensors) in computations.items():
        recorder = sensitive_ops_under_autocast(dtype, function, *tensors)
        assert recorder.calls, f"{name}: no sensitive operation recorded"
        assert recorder.low_precision() == [], f"{name} computes in low precision: {recorder.low_precision()}"


def test_the_recorder_sees_a_low_precision_softmax():
    recorder = sensitive_ops_under_autocast(torch.bfloat16, lambda x: torch.softmax(x, 1), torch.randn(2, 3))
    assert recorder.low_precision() == [("_softmax", (torch.bfloat16,))]


@pytest.fixture(scope="module")
def stand_up(reliability_settings, tmp_path_factory):
    """``stand_up(trainer, key)``: the trainer on the tiny plans, constructed in this process, its nnU-Net folders
    (which nnU-Net 2.8 reads from the environment when it needs them) in a temporary folder."""
    work_dir = tmp_path_factory.mktemp("autocast")
    models = segmentation_models_for(sorted({t for t, _ in CASES}), reliability_settings, work_dir)
    patch = pytest.MonkeyPatch()
    for folder in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        patch.setenv(folder, str(work_dir / folder))

    def get(trainer: str, key: str):
        model = models.get((key, segmentation_model_trainer_of(trainer)))
        if model is None:
            patch.delenv(SEGMENTATION_MODEL_VARIABLE, raising=False)
        else:
            patch.setenv(SEGMENTATION_MODEL_VARIABLE, str(model))
        return stand_up_trainer(trainer, reliability_settings[key])

    yield get
    patch.undo()


def autocast_steps_are_finite(trainer, setting, dtype) -> dict:
    """One forward pass of the trainer's network under CPU autocast, then for the logits as they are and scaled by
    :data:`EXTREME_LOGIT_SCALE` the trainer's loss and its backward pass: ``{scale: loss and every gradient
    finite?}``."""
    batch = batch_for_network(trainer, generated_batch(trainer, setting, seed=0))
    if hasattr(trainer, "diagnosis_tap"):
        trainer.diagnosis_tap.targets = torch.tensor([0, 1])
    with torch.autocast("cpu", dtype=dtype):  # the warm-up pass of the module docstring
        warm_up = trainer.network(batch["data"])
        trainer.loss(warm_up, batch["target"]).backward()
    trainer.network.zero_grad(set_to_none=True)
    finite = {}
    with torch.autocast("cpu", dtype=dtype):
        outputs = trainer.network(batch["data"])
    for scale in (1.0, EXTREME_LOGIT_SCALE):
        trainer.network.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype):
            scaled = [o * scale for o in outputs] if isinstance(outputs, list) else outputs * scale
            loss = trainer.loss(scaled, batch["target"])
        loss.backward(retain_graph=scale == 1.0)
        gradients = [p.grad for p in trainer.network.parameters() if p.grad is not None]
        finite[scale] = math.isfinite(float(loss.detach())) and all(bool(g.isfinite().all()) for g in gradients)
    return finite


@pytest.fixture(scope="module")
def plain_nnunet_finite(stand_up, reliability_settings):
    """``{(key, dtype, scale): finite?}`` of nnU-Net's own trainer, the reference."""
    results = {}
    for key, setting in reliability_settings.items():
        trainer = stand_up(PLAIN_NNUNET, key)
        for dtype in LOW_PRECISION if key == "2d" else [torch.bfloat16]:
            for scale, finite in autocast_steps_are_finite(trainer, setting, dtype).items():
                results[(key, dtype, scale)] = finite
    return results


@pytest.mark.parametrize("trainer, key", CASES, ids=CASE_IDS)
def test_trains_under_autocast_wherever_plain_nnunet_does(trainer, key, stand_up, network_builds, distinct_build,
                                                          reliability_settings, plain_nnunet_finite):
    if trainer in network_builds[key].refused:
        pytest.skip(f"these plans cannot carry {trainer}'s network (refused with a clear error)")
    distinct = network_builds[key].representative[trainer] == trainer
    if key != "2d" and not distinct:
        distinct_build(trainer, key)  # skips: another trainer's check covers this network
    instance = stand_up(trainer, key)
    for dtype in LOW_PRECISION if key == "2d" and distinct else [torch.bfloat16]:
        for scale, finite in autocast_steps_are_finite(instance, reliability_settings[key], dtype).items():
            assert finite or not plain_nnunet_finite[(key, dtype, scale)], (dtype, scale)
    assert plain_nnunet_finite[(key, torch.bfloat16, 1.0)]  # the reference itself trains under autocast
