"""A timm ViT state dict (written by the test: nothing downloads) loads into our transformer part in 2D and 3D (blocks
by name, positions resized, the patch filter summed over RGB and inflated along depth); ``nnunet_ext_compress``'s
weights load through nnU-Net's own ``load_pretrained_weights`` into the trainer with fewer blocks."""

import json
import subprocess
import sys

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

from nnunet_ext.architectures.pretrained_vit import vit_weights_for
from nnunet_ext.reliability.tiny_plans import tiny_plans
from nnunet_ext.trainers import TransUNetTrainer_3b_Tiny, TransUNetTrainer_Tiny, UNETRTrainer_Tiny
from nnunet_ext.trainers.transformers.initial_weights import write_compressed_weights

from .planned_networks import build


def tiny(planned_synthetic, trainer, configuration, deep_supervision=True):
    plans_file, dataset_json = planned_synthetic["nnUNetPlans"]
    plans = tiny_plans(json.loads(plans_file.read_text()))
    adjust = getattr(trainer, "plans_for_training", None)
    plans = adjust(plans, configuration) if adjust else plans
    return build(plans, dataset_json, configuration, deep_supervision, trainer=trainer)[:2], plans, dataset_json


def timm_vit(depth=12):
    torch.manual_seed(0)
    return VisionTransformer(img_size=64, patch_size=16, embed_dim=64, depth=depth, num_heads=4).eval()


@pytest.mark.parametrize("configuration", ["2d", "3d_fullres"])
def test_a_timm_vit_fills_the_transformer_and_the_patch_embedding(planned_synthetic, configuration):
    (network, configuration_manager), _, _ = tiny(planned_synthetic, UNETRTrainer_Tiny, configuration)
    vit = timm_vit()
    network.load_state_dict(vit_weights_for(network, vit.state_dict()))
    for ours, theirs in zip(network.transformer.blocks, vit.blocks):
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    assert torch.equal(network.transformer.norm.weight, vit.norm.weight)
    assert network.transformer.position.shape == (1, network.transformer.num_tokens, 64)
    grey = torch.rand(1, 1, 16, 16).expand(1, 3, 16, 16)  # one token of a grey image, 3 equal channels
    expected = vit.patch_embed.proj(grey).flatten()
    if configuration == "2d":
        ours = network.embedding(grey[:, :1]).flatten()
    else:  # a volume constant along depth gives the 2D response
        ours = network.embedding(grey[:, :1].unsqueeze(2).expand(1, 1, 16, 16, 16)).flatten()
    assert torch.allclose(ours, expected, atol=1e-5)


def test_a_vit_of_another_width_is_refused(planned_synthetic):
    (network, _), _, _ = tiny(planned_synthetic, UNETRTrainer_Tiny, "2d")
    other = VisionTransformer(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2)
    with pytest.raises(ValueError, match="32 wide"):
        vit_weights_for(network, other.state_dict())


def test_compressed_weights_start_the_model_with_fewer_blocks(planned_synthetic, tmp_path):
    (full, _), plans, dataset_json = tiny(planned_synthetic, TransUNetTrainer_Tiny, "2d")
    folder = tmp_path / "TransUNetTrainer_Tiny__nnUNetPlans__2d"
    (folder / "fold_0").mkdir(parents=True)
    torch.save({"trainer_name": "TransUNetTrainer_Tiny", "network_weights": full.state_dict()},
               folder / "fold_0" / "checkpoint_final.pth")
    written = write_compressed_weights(str(folder), 3, str(tmp_path / "init_3b.pth"))
    (compressed, _), _, _ = tiny(planned_synthetic, TransUNetTrainer_3b_Tiny, "2d")
    load_pretrained_weights(compressed, str(written))  # nnU-Net's -pretrained_weights
    for i in range(3):
        assert torch.equal(compressed.transformer.blocks[i].attn.qkv.weight, full.transformer.blocks[i].attn.qkv.weight)
    assert torch.equal(compressed.encoder.stages[0][0].convs[0].conv.weight,
                       full.encoder.stages[0][0].convs[0].conv.weight)
    with pytest.raises(Exception, match="exists"):
        write_compressed_weights(str(folder), 3, str(written))  # never replaces a file
    result = subprocess.run([sys.executable, "-m", "nnunet_ext.cli.compress", "-i", str(folder), "-b", "13", "-o",
                             str(tmp_path / "x.pth")], capture_output=True, text=True)
    assert result.returncode == 2 and "between 0 and 12" in result.stderr and "Traceback" not in result.stderr
