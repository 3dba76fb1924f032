"""A timm ViT or DeiT state dict (``vit_base_patch16_224``, ``deit_base_patch16_224``, ...; a local file: nothing is
downloaded) loaded into the transformer part of our networks (:class:`TokenTransformer` ``transformer.*`` and, where
the network embeds input patches, :class:`PatchEmbedding` ``embedding.*``).

What is taken, and how it is adapted:

* ``blocks.<i>.*`` -> ``transformer.blocks.<i>.*`` for the network's first ``depth`` blocks (timm's ``Block`` is
  ours, so the names and shapes are the same; a network with fewer blocks takes the first ones);
* ``norm.*`` -> ``transformer.norm.*``;
* ``pos_embed [1, prefix + h*w, D]``: the class/distillation tokens' entries dropped, the ``h x w`` grid resized
  (bicubic) to the network's token grid; in 3D the grid's last two axes, repeated along the first (the 2D embedding
  "inflated", as I3D inflates 2D filters);
* ``patch_embed.proj.weight [D, 3, p, p]`` (only where the network's embedding has the same token size in plane):
  the RGB filters summed to one grey filter and shared by the ``C`` input channels (divided by ``C``, so that an
  image of equal channels gives the RGB filter's response to grey); in 3D inflated along depth (repeated over the
  ``p_d`` slices and divided by ``p_d``), so a volume constant along depth gives the 2D response.

Everything else (the CNN, the decoder, the heads) keeps the network's own weights. A state dict whose width differs
from the network's, or that has no ``blocks``, is refused.
"""

import math
import re
from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _prefix_tokens(pos_embed: torch.Tensor) -> int:
    """Entries of ``pos_embed [1, T, D]`` before the square patch grid (1 for ViT's class token, 2 for DeiT's
    distilled models, 0 without)."""
    for prefix in (0, 1, 2):
        side = math.isqrt(pos_embed.shape[1] - prefix)
        if side * side == pos_embed.shape[1] - prefix:
            return prefix
    raise ValueError(f"pos_embed of {pos_embed.shape[1]} entries is not a square grid after 0-2 prefix tokens")


def resized_position(pos_embed: torch.Tensor, grid) -> torch.Tensor:
    """timm's ``pos_embed [1, prefix + s*s, D]`` -> ``[1, prod(grid), D]`` for our token ``grid`` (2D or 3D)."""
    prefix = _prefix_tokens(pos_embed)
    patches = pos_embed[:, prefix:]
    side, width = math.isqrt(patches.shape[1]), patches.shape[2]
    square = patches.reshape(1, side, side, width).permute(0, 3, 1, 2)
    plane = F.interpolate(square, size=tuple(grid[-2:]), mode="bicubic", align_corners=False)
    if len(grid) == 3:
        plane = plane.unsqueeze(2).expand(-1, -1, grid[0], -1, -1)
    return plane.flatten(2).transpose(1, 2).contiguous()


def inflated_patch_filter(weight: torch.Tensor, target_shape) -> torch.Tensor:
    """``[D, 3, p, p]`` RGB filters -> ``target_shape`` ``[D, C, (p_d,) p, p]`` (module docstring)."""
    channels = target_shape[1]
    grey = weight.sum(dim=1, keepdim=True) / channels
    filters = grey.expand(-1, channels, -1, -1)
    if len(target_shape) == 5:
        depth = target_shape[2]
        filters = filters.unsqueeze(2).expand(-1, -1, depth, -1, -1) / depth
    return filters.contiguous()


def vit_weights_for(network: nn.Module, vit_state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``network``'s state dict with its transformer part (and patch embedding, where it fits) taken from
    ``vit_state_dict``. Refuses a state dict of another width, or one with fewer blocks than the network's."""
    ours = network.state_dict()
    transformer = network.transformer
    if "pos_embed" not in vit_state_dict or not any(BLOCK_KEY.match(k) for k in vit_state_dict):
        raise ValueError("not a timm ViT/DeiT state dict: it has no pos_embed or blocks.<i>.* entries")
    width = vit_state_dict["pos_embed"].shape[-1]
    if width != transformer.width:
        raise ValueError(f"the ViT is {width} wide, the network's transformer {transformer.width}: use a trainer of "
                         f"that width (transformer_width) or another ViT")
    available = {int(m.group(1)) for m in map(BLOCK_KEY.match, vit_state_dict) if m}
    if transformer.depth and max(available) + 1 < transformer.depth:
        raise ValueError(f"the ViT has {max(available) + 1} blocks, the network {transformer.depth}")
    loaded = dict(ours)
    for key, value in vit_state_dict.items():
        match = BLOCK_KEY.match(key)
        if match and int(match.group(1)) < transformer.depth:
            loaded[f"transformer.{key}"] = value
        elif key.startswith("norm.") and transformer.depth:
            loaded[f"transformer.{key}"] = value
    loaded["transformer.position"] = resized_position(vit_state_dict["pos_embed"], _grid(network))
    embedding = getattr(network, "embedding", None)
    source = vit_state_dict.get("patch_embed.proj.weight")
    if embedding is not None and source is not None and \
            tuple(embedding.projection.weight.shape[-2:]) == tuple(source.shape[-2:]):
        loaded["embedding.projection.weight"] = inflated_patch_filter(source, ours["embedding.projection.weight"].shape)
        if "patch_embed.proj.bias" in vit_state_dict and "embedding.projection.bias" in ours:
            loaded["embedding.projection.bias"] = vit_state_dict["patch_embed.proj.bias"]
    mismatched = [k for k in ours if loaded[k].shape != ours[k].shape]
    if mismatched:
        raise ValueError(f"ViT weights do not fit the network at {mismatched[:5]}")
    return loaded


def _grid(network: nn.Module):
    return tuple(network.token_grid)
