"""Mixin: every training and validation batch gets the click cue as its last channel, after nnU-Net's whole
transform pipeline, from the batch's final full-resolution target (so click and image stay aligned through the
spatial augmentations, and the intensity augmentations, which touch every input channel, never alter the cue).

Per patch one click, drawn inside a uniformly chosen target component of the patch (:func:`~nnunet_ext.clicks.
drawing.draw_training_click`; nnU-Net's sampler chose the patch); a patch without target gets the empty cue (all
zeros). Training clicks are random; validation clicks come from a generator seeded by the batch's case ids, so the
same patches get the same clicks in every run."""

import zlib

import numpy as np
import torch

from nnunet_ext.clicks.cue import click_cue
from nnunet_ext.clicks.drawing import draw_training_click

VALIDATION_CLICK_SEED = 12345


class ClickCueBatches:
    def with_click_cues(self, batch: dict, rng: np.random.Generator) -> dict:
        """``batch`` with ``data [B, C, *P]`` -> ``[B, C + 1, *P]`` (a new dict; the target is unchanged)."""
        data, target = batch["data"], batch["target"]
        full_resolution = target[0] if isinstance(target, (list, tuple)) else target
        labels = full_resolution.detach().cpu().numpy()
        regions = self.label_manager.has_regions
        ignore = self.label_manager.ignore_label if self.label_manager.has_ignore_label else None
        spacing = [float(s) for s in self.configuration_manager.spacing]
        radius = float(self.plans_manager.plans["nnunet_ext_click_cue"]["radius_mm"])
        cues = []
        for sample in labels:
            click = draw_training_click(sample if regions else sample[0], rng, ignore, regions)
            cues.append(click_cue(data.shape[2:], [] if click is None else [click], spacing, radius))
        cue = torch.stack(cues)[:, None].to(device=data.device, dtype=data.dtype)
        return {**batch, "data": torch.cat([data, cue], dim=1)}

    def batch_for_network(self, batch: dict) -> dict:
        """The training batch as the network receives it (what ``train_step`` hands nnU-Net's step; the checks that
        run the network without ``train_step`` use it too)."""
        if not hasattr(self, "_click_rng"):
            self._click_rng = np.random.default_rng()
        return self.with_click_cues(batch, self._click_rng)

    def train_step(self, batch: dict) -> dict:
        return super().train_step(self.batch_for_network(batch))

    def validation_step(self, batch: dict) -> dict:
        keys = "/".join(map(str, batch.get("keys", [])))
        rng = np.random.default_rng([VALIDATION_CLICK_SEED, zlib.crc32(keys.encode())])
        return super().validation_step(self.with_click_cues(batch, rng))
