"""The segmentation decoder's multi-scale features, for SeATrans ("the second and third layers of the diagnosis
model will interact with the multi-scale features in UNet decoder", sec. 2.1).

nnU-Net's planned decoder (dynamic-network-architectures' ``UNetDecoder``, or ``UNetResDecoder``, whose ``forward``
is the same loop) returns only its segmentation outputs; the stage outputs it computes on the way are local
variables of its ``forward``. Forward hooks could catch them, but a hook registered after ``torch.compile`` traced
the network is never called, and nnU-Net compiles the network on GPUs. :func:`decoder_output_and_features`
therefore runs the decoder's own loop once, with the decoder's own modules (``transpconvs``, ``stages``,
``seg_layers``) in the same order, and keeps the stage outputs as well: the segmentation output is bitwise what
``decoder(skips)`` returns, at the cost of no extra computation.
"""

from typing import List, Sequence, Tuple, Union

import torch
from torch import nn

from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from dynamic_network_architectures.building_blocks.unet_residual_decoder import UNetResDecoder

# the decoders whose forward is the loop re-run below (a subclass overriding forward computes something else)
DECODER_FORWARDS = (UNetDecoder.forward, UNetResDecoder.forward)


def decoder_output_and_features(decoder: nn.Module, skips: Sequence[torch.Tensor]
                                ) -> Tuple[Union[torch.Tensor, List[torch.Tensor]], List[torch.Tensor]]:
    """``decoder(skips)`` and the decoder's stage outputs arranged at the encoder's scales.

    :param decoder: nnU-Net's planned ``UNetDecoder`` / ``UNetResDecoder`` (attributes ``stages``, ``transpconvs``,
        ``seg_layers``, ``deep_supervision``, read at call time, so nnU-Net's deep-supervision switch applies).
    :param skips: the encoder's outputs, highest resolution first, ``skips[k]`` ``[B, F_k, *S_k]``,
        ``k = 0 .. N-1``; ``skips[-1]`` is the bottleneck.
    :return: ``(segmentation, features)``:

        - ``segmentation``: exactly ``decoder(skips)``, the logits ``[B, K, *S_0]`` or, with deep supervision, the
          list of logits ``[B, K, *S_k]`` for ``k = 0 .. N-2``, highest resolution first;
        - ``features``: ``N`` maps with the shapes of ``skips``: ``features[k]`` ``[B, F_k, *S_k]`` is the output of
          decoder stage ``N-2-k`` (the stage that upsamples to scale ``k`` and merges ``skips[k]``) for
          ``k < N-1``, and ``features[N-1]`` is the bottleneck ``skips[-1]``, where the decoder starts. A
          SeATrans branch takes either list.
    :raises TypeError: for a decoder whose ``forward`` is not dynamic-network-architectures' U-Net loop.
    :raises ValueError: when ``len(skips)`` is not the decoder's stages + 1.
    """
    if getattr(type(decoder), "forward", None) not in DECODER_FORWARDS:
        raise TypeError(f"{type(decoder).__name__} is not a dynamic-network-architectures UNetDecoder or "
                        f"UNetResDecoder (or overrides their forward); its stage outputs cannot be read by re-running "
                        f"their loop")
    if len(skips) != len(decoder.stages) + 1:
        raise ValueError(f"the decoder has {len(decoder.stages)} stages and needs {len(decoder.stages) + 1} skips, "
                         f"got {len(skips)}")
    # the loop of UNetDecoder.forward (dynamic-network-architectures), keeping each stage's output
    lres_input = skips[-1]
    seg_outputs, stage_outputs = [], []
    for s in range(len(decoder.stages)):
        x = decoder.transpconvs[s](lres_input)
        x = torch.cat((x, skips[-(s + 2)]), 1)
        x = decoder.stages[s](x)
        if decoder.deep_supervision:
            seg_outputs.append(decoder.seg_layers[s](x))
        elif s == (len(decoder.stages) - 1):
            seg_outputs.append(decoder.seg_layers[-1](x))
        stage_outputs.append(x)
        lres_input = x
    seg_outputs = seg_outputs[::-1]
    segmentation = seg_outputs if decoder.deep_supervision else seg_outputs[0]
    return segmentation, stage_outputs[::-1] + [skips[-1]]
