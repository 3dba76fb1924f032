"""SMCA's spatial prior on cross-attention (Gao et al. 2021, *Fast Convergence of DETR with Spatially Modulated
Co-Attention*, sec. 3.1-3.2; the seminar in ``../shared/papers/003``), in 2D and 3D.

Each query token ``O_q`` predicts, per head ``h``, a normalised centre and a scale per spatial axis, and the
co-attention logits of that query over the key positions get ``log G`` added::

    c_h = sigmoid(logit(c_0) + MLP(O_q))                    SMCA: c_h^norm = sigmoid(MLP(O_q))   (c_0 = 1/2)
    s_h = s_min + s_0 * exp(FC(O_q))                         SMCA: s_h = FC(O_q)
    log G_h(p) = - sum_a (p_a - c_{h,a})^2 / (beta * s_{h,a}^2)                        SMCA: G (the same Gaussian)
    attention_h = softmax(q k^T / sqrt(d) + log G_h)                                   SMCA: "multi-head" modulation

Readings, where the paper leaves a choice (numerically sound ones):

* **Closed form, float32.** ``log G`` is computed as the quadratic form above, never as ``log(exp(...))``: no
  underflow to ``-inf``. Under autocast it stays float32.
* **The scale's floor** ``s_min`` is one token cell per axis (``1 / G_a`` in normalised coordinates). With
  ``|p - c| <= 1`` every entry of ``log G`` is finite, and the key nearest the centre lies within half a cell of
  it, so ``log G >= -ndim / (4 * beta)`` there: no row of logits is ever all ``-inf``, and the softmax of every row
  keeps a finite maximum near the predicted centre.
* **Positive scales** by ``s_0 * exp(FC)`` (SMCA's ``FC`` output is squared, so its sign is irrelevant; the
  exponential keeps it positive and smooth), the ``FC`` initialised to zero so every query starts at ``s_0``.
* ``beta = 2``: the scale is then the Gaussian's standard deviation (SMCA's ``beta`` is a hyper-parameter).
* **Coordinates**: the key positions are the token centres ``(t_a + 1/2) / G_a`` in row-major order of the token grid
  (:func:`normalised_token_centres`), so a centre of 1/2 is the middle of the map whatever its size.

Centres from the segmentation (``centres="lesion"``): ``c_0`` and ``s_0`` are the centroid and the spatial standard
deviation of the segmentation's lesion probabilities on the token grid (:func:`lesion_statistics`), and the MLP's
last layer starts at zero, so every query's prior starts on the predicted lesion and can move from there. A map
without lesion probability falls back to SMCA's start (centre 1/2, scale ``s_0`` of the query variant).

Memory: ``log G`` is ``B x heads x N_q x N_k`` floats, the size of the attention it modulates.
"""

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

CENTRE_SOURCES = ("query", "lesion")
INITIAL_SCALE = 0.25  # s_0 of the query variant: a quarter of the map's extent per axis
GAUSSIAN_BETA = 2.0  # beta * s^2 = 2 sigma^2: s is the standard deviation
EMPTY_LESION_MASS = 1e-3  # below this lesion mass (in token cells) a map counts as lesion-free


def normalised_token_centres(grid: Sequence[int], device=None) -> torch.Tensor:
    """``[N, ndim]`` float32 centres ``(t_a + 1/2) / G_a`` of the tokens of ``grid``, in row-major order (the order of
    ``flatten(2)``)."""
    axes = [(torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size for size in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def lesion_statistics(lesion_map: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centroid, spatial standard deviation and mass of a lesion map on a token grid.

    :param lesion_map: ``[B, *G]`` non-negative lesion probabilities on the token grid ``G``.
    :return: ``centre [B, ndim]`` and ``extent [B, ndim]`` in normalised coordinates (:func:`normalised_token_centres`),
        and ``mass [B]`` (the sum of the map); float32.
    """
    grid = lesion_map.shape[1:]
    positions = normalised_token_centres(grid, lesion_map.device)  # [N, ndim]
    weights = lesion_map.float().flatten(1).clamp_min(0)  # [B, N]
    mass = weights.sum(dim=1)
    safe = mass.clamp_min(1e-12)[:, None]
    centre = weights @ positions / safe
    variance = weights @ positions.square() / safe - centre.square()
    return centre, variance.clamp_min(0).sqrt(), mass


class GaussianSpatialPrior(nn.Module):
    """``log G`` for the co-attention of ``num_heads`` heads over a token grid (module docstring).

    ``forward(queries [B, N_q, D], key_grid, lesion_map=None)`` -> ``log G`` ``[B, num_heads, N_q, prod(key_grid)]``,
    float32; ``lesion_map`` ``[B, *key_grid]`` (the lesion probabilities pooled to the key grid) is read with
    ``centres="lesion"`` only.

    :param embed_dim: ``D``, the width of the query tokens.
    :param num_heads: one centre and scale per head (SMCA's head-specific modulation).
    :param ndim: spatial axes (2 or 3).
    :param centres: ``"query"`` (SMCA) or ``"lesion"`` (start on the segmentation's lesion).
    """

    def __init__(self, embed_dim: int, num_heads: int, ndim: int, centres: str = "query"):
        super().__init__()
        if centres not in CENTRE_SOURCES:
            raise ValueError(f"centres must be one of {CENTRE_SOURCES}, got {centres!r}")
        self.num_heads, self.ndim, self.centres = num_heads, ndim, centres
        # SMCA: "a small MLP" for the normalised centre, an FC for the scales, per head
        self.centre_mlp = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True),
                                        nn.Linear(embed_dim, num_heads * ndim))
        self.scale_fc = nn.Linear(embed_dim, num_heads * ndim)
        nn.init.zeros_(self.scale_fc.weight)
        nn.init.zeros_(self.scale_fc.bias)
        if centres == "lesion":
            nn.init.zeros_(self.centre_mlp[-1].weight)
            nn.init.zeros_(self.centre_mlp[-1].bias)

    def start(self, batch: int, key_grid: Sequence[int], lesion_map: Optional[torch.Tensor], device
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``c_0`` and ``s_0``, ``[B, 1, ndim]`` each: SMCA's (1/2, :data:`INITIAL_SCALE`) or the lesion's."""
        centre = torch.full((batch, 1, self.ndim), 0.5, device=device)
        scale = torch.full((batch, 1, self.ndim), INITIAL_SCALE, device=device)
        if self.centres == "lesion":
            if lesion_map is None:
                raise ValueError("centres='lesion' needs the lesion probabilities on the key grid")
            lesion_centre, lesion_extent, mass = lesion_statistics(lesion_map)
            found = (mass > EMPTY_LESION_MASS)[:, None, None]
            centre = torch.where(found, lesion_centre[:, None], centre)
            scale = torch.where(found, lesion_extent[:, None], scale)
        return centre, scale

    def forward(self, queries: torch.Tensor, key_grid: Sequence[int],
                lesion_map: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, num_queries, _ = queries.shape
        key_grid = [int(g) for g in key_grid]
        if len(key_grid) != self.ndim:
            raise ValueError(f"a {self.ndim}D prior got the key grid {key_grid}")
        with torch.autocast(queries.device.type, enabled=False):
            queries = queries.float()
            floor = torch.tensor([1.0 / g for g in key_grid], device=queries.device)  # one token cell per axis
            start_centre, start_scale = self.start(batch, key_grid, lesion_map, queries.device)
            start_centre = start_centre.clamp(1e-4, 1 - 1e-4)
            shape = (batch, num_queries, self.num_heads, self.ndim)
            centre = torch.sigmoid(torch.logit(start_centre)[:, :, None] + self.centre_mlp(queries).view(shape))
            scale = floor + start_scale[:, :, None] * torch.exp(self.scale_fc(queries).view(shape).clamp(max=20.0))
            centre, scale = centre.permute(0, 2, 1, 3), scale.permute(0, 2, 1, 3)  # [B, heads, N_q, ndim]
            positions = normalised_token_centres(key_grid, queries.device)  # [N_k, ndim]
            log_prior = queries.new_zeros(batch, self.num_heads, num_queries, positions.shape[0])
            for axis in range(self.ndim):  # one [B, h, N_q, N_k] term at a time
                offset = positions[:, axis] - centre[..., axis, None]
                log_prior = log_prior - offset.square() / (GAUSSIAN_BETA * scale[..., axis, None].square())
        return log_prior

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, ndim={self.ndim}, centres={self.centres!r}, beta={GAUSSIAN_BETA}"


def worst_log_prior_at_nearest_key(ndim: int) -> float:
    """The lower bound on ``log G`` at the key nearest the centre (module docstring): ``-ndim / (4 * beta)``."""
    return -ndim / (4 * GAUSSIAN_BETA)
