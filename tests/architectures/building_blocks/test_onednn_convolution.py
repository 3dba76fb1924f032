import pytest
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks import onednn_convolution
from nnunet_ext.architectures.building_blocks.onednn_convolution import onednn_conv_op


@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_same_parameters_and_result_as_the_plans_conv_op(conv_op):
    torch.manual_seed(0)
    dim = 2 if conv_op is nn.Conv2d else 3
    reference = conv_op(2, 3, 3, padding=1, stride=2)
    twin = onednn_conv_op(conv_op)(2, 3, 3, padding=1, stride=2)
    assert issubclass(type(twin), conv_op)
    twin.load_state_dict(reference.state_dict())  # strict: same names and shapes
    x = torch.randn(1, 2, *[9] * dim, requires_grad=True)
    expected, output = reference(x), twin(x)
    assert torch.allclose(output, expected, atol=1e-5)
    grad_twin, = torch.autograd.grad(output.square().sum(), twin.weight)
    grad_reference, = torch.autograd.grad(expected.square().sum(), reference.weight)
    assert torch.allclose(grad_twin, grad_reference, atol=1e-4)


def test_forward_runs_on_onednn_for_float32_cpu_input(monkeypatch):
    calls = []
    original = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *a: calls.append(1) or original(*a))
    conv = onednn_conv_op(nn.Conv3d)(2, 3, 3, padding=1)
    conv(torch.randn(1, 2, 6, 6, 6))
    assert calls == [1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 2, 6, 6, 6)).dtype == torch.bfloat16  # autocast's own conv, cast as usual
    conv.double()(torch.randn(1, 2, 6, 6, 6, dtype=torch.float64))
    assert calls == [1]


def test_other_conv_ops_are_kept():
    assert onednn_conv_op(nn.Conv1d) is nn.Conv1d
    assert onednn_convolution.OneDNNConv3d.__mro__[1:3] == (onednn_convolution._OneDNNForward, nn.Conv3d)


def test_compiles_without_a_graph_break_through_the_plain_convolution():
    conv = onednn_conv_op(nn.Conv3d)(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 6, 6, 6)
    explanation = torch._dynamo.explain(conv)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    assert torch.allclose(torch.compile(conv, backend="eager")(x), conv(x), atol=1e-5)
