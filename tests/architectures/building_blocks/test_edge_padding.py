import pytest
import torch
from torch.nn import functional as F

from nnunet_ext.architectures.building_blocks.edge_padding import replicate_pad


@pytest.mark.parametrize("spatial", [(5, 7), (3, 4, 6)])
@pytest.mark.parametrize("width", [1, 2])
def test_equals_torch_replicate_padding_values_and_gradients(spatial, width):
    x = torch.randn(2, 3, *spatial, requires_grad=True)
    reference = F.pad(x, [width] * 2 * len(spatial), mode="replicate")
    padded = replicate_pad(x, width)
    assert padded.shape == reference.shape and torch.equal(padded, reference)
    weights = torch.randn_like(reference)
    grad, = torch.autograd.grad((padded * weights).sum(), x)
    grad_reference, = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.allclose(grad, grad_reference, atol=1e-6)  # edge slices collect the gradient of their copies


def test_compiles_without_graph_breaks():
    explanation = torch._dynamo.explain(lambda x: replicate_pad(x, 1))(torch.randn(1, 2, 4, 4))
    assert explanation.graph_break_count == 0
