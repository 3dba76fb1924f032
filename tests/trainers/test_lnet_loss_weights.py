"""L-Net's trainers supervise the logits at 1/N once: through the full-resolution output, which interpolates them,
and not a second time as the second deep-supervision output; every parameter still gets a gradient (DDP)."""

import json

import pytest
import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.architectures.building_blocks.lnet_decoder import supported_output_strides
from nnunet_ext.losses.full_resolution_presence import FullResolutionPresenceWrapper
from nnunet_ext.trainers import LNetTrainer
from nnunet_ext.trainers.network_builders.lnet import build_lnet

CONFIGURATION = "2d"


@pytest.fixture
def lnet_trainer(planned_synthetic, tmp_path, monkeypatch):
    """A constructed (not initialised) ``LNetTrainer`` on the shared plans; ``_build_loss`` needs no data."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = dict(json.loads(plans_file.read_text()), continue_training=False)
    return LNetTrainer(plans, CONFIGURATION, 0, dataset_json, torch.device("cpu"))


def test_the_logits_at_1_over_n_are_not_supervised_twice(lnet_trainer):
    cuts = supported_output_strides(lnet_trainer.configuration_manager.pool_op_kernel_sizes)
    assert len(cuts) >= 3
    for cut in cuts:  # stride 1 to the bottleneck, whose 2 outputs nnU-Net already weights (1, 0)
        lnet_trainer.output_stride = cut
        ours = lnet_trainer._build_loss().weight_factors
        nnunet = nnUNetTrainer._build_loss(lnet_trainer).weight_factors  # nnU-Net's for the same scales
        assert len(ours) == len(nnunet) >= 2 and ours[1] == 0.0, cut
        assert sum(ours) == pytest.approx(1.0), cut
        kept = [i for i in range(len(ours)) if i != 1]  # the others keep nnU-Net's ratios
        assert [ours[i] / ours[0] for i in kept] == pytest.approx([nnunet[i] / nnunet[0] for i in kept]), cut


def test_every_parameter_gets_a_gradient_under_ddp_weights(lnet_trainer):
    """DDP without ``find_unused_parameters`` (nnU-Net then gives the lowest output 1e-6, not 0): the 1x1 layer of
    the 1/N logits, whose own output now has weight 0, gets its gradient through the full-resolution output, so the
    same parameters train as with nnU-Net's weights: all of them."""
    lnet_trainer.is_ddp = True  # only the weights change: the dual loss replaces nnU-Net's DDP Dice
    patch = lnet_trainer.configuration_manager.patch_size
    for cut in supported_output_strides(lnet_trainer.configuration_manager.pool_op_kernel_sizes):
        lnet_trainer.output_stride = cut
        ours = lnet_trainer._build_loss()
        ours.loss.dual = True
        nnunet = FullResolutionPresenceWrapper(ours.loss, nnUNetTrainer._build_loss(lnet_trainer).weight_factors)
        assert ours.weight_factors[1] == 0.0 and nnunet.weight_factors[-1] > 0.0, cut
        scales = lnet_trainer._get_deep_supervision_scales()
        torch.manual_seed(0)
        network = build_lnet(lnet_trainer.plans_manager, lnet_trainer.configuration_manager, 1, 3, True, cut)
        image = torch.randn(2, 1, *patch)
        targets = [torch.randint(0, 3, (2, 1, *[round(p * s) for p, s in zip(patch, scale)])) for scale in scales]
        trained = {}
        for name, loss in (("ours", ours), ("nnunet", nnunet)):
            network.zero_grad(set_to_none=True)
            loss(network(image), targets).backward()
            trained[name] = {n for n, p in network.named_parameters() if p.grad is not None}
        assert trained["ours"] == trained["nnunet"] == {n for n, _ in network.named_parameters()}, cut
