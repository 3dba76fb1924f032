import pytest
import torch
from torch import nn

from nnunet_ext.architectures.building_blocks import onednn_convolution
from nnunet_ext.architectures.building_blocks.onednn_convolution import onednn_conv_op


SETTINGS = {"3x3_same": dict(kernel_size=3, padding=1), "1x1": dict(kernel_size=1), "3x3_valid": dict(kernel_size=3),
            "3x3_stride2_falls_back": dict(kernel_size=3, padding=1, stride=2),
            "no_bias": dict(kernel_size=3, padding=1, bias=False)}


@pytest.mark.parametrize("input_needs_grad", [True, False], ids=["input_grad", "weights_only"])
@pytest.mark.parametrize("setting", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("conv_op", [nn.Conv2d, nn.Conv3d])
def test_same_parameters_result_and_gradients_as_the_plans_conv_op(conv_op, setting, input_needs_grad):
    torch.manual_seed(0)
    dim = 2 if conv_op is nn.Conv2d else 3
    reference = conv_op(2, 3, **setting)
    twin = onednn_conv_op(conv_op)(2, 3, **setting)
    assert issubclass(type(twin), conv_op)
    twin.load_state_dict(reference.state_dict())  # strict: same names and shapes
    x = torch.randn(1, 2, *[7, 9, 8][:dim], requires_grad=input_needs_grad)
    expected, output = reference(x), twin(x)
    assert torch.allclose(output, expected, atol=1e-5)
    upstream = torch.randn_like(output)  # not symmetric in its voxels, so that a flipped kernel would show
    wanted = [x] * input_needs_grad + list(reference.parameters())
    grads_reference = torch.autograd.grad((expected * upstream).sum(), wanted)
    grads_twin = torch.autograd.grad((output * upstream).sum(), [x] * input_needs_grad + list(twin.parameters()))
    for grad_twin, grad_reference in zip(grads_twin, grads_reference):
        assert grad_twin.shape == grad_reference.shape
        assert torch.allclose(grad_twin, grad_reference, atol=1e-4)


def test_forward_and_backward_run_on_onednn_for_float32_cpu_input(monkeypatch):
    calls = []
    original = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *a: calls.append(1) or original(*a))
    conv = onednn_conv_op(nn.Conv3d)(2, 3, 3, padding=1)
    output = conv(torch.randn(1, 2, 6, 6, 6, requires_grad=True))
    assert calls == [1]
    output.sum().backward()
    assert calls == [1, 1, 1]  # the input's gradient and the weight's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 2, 6, 6, 6)).dtype == torch.bfloat16  # autocast's own conv, cast as usual
    conv.double()(torch.randn(1, 2, 6, 6, 6, dtype=torch.float64))
    assert calls == [1, 1, 1]


def test_other_conv_ops_are_kept():
    assert onednn_conv_op(nn.Conv1d) is nn.Conv1d
    assert onednn_convolution.OneDNNConv3d.__mro__[1:3] == (onednn_convolution._OneDNNForward, nn.Conv3d)


def test_compiles_without_a_graph_break_through_the_plain_convolution():
    conv = onednn_conv_op(nn.Conv3d)(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 6, 6, 6)
    explanation = torch._dynamo.explain(conv)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    assert torch.allclose(torch.compile(conv, backend="eager")(x), conv(x), atol=1e-5)
