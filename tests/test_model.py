"""The small-map depthwise path trains exactly like nn.Conv2d."""
import pytest
import torch

from scalesearch.arch._model import DepthwiseConv


@pytest.mark.parametrize("side,kernel,stride", [(1, 5, 1), (2, 5, 1), (2, 3, 1), (4, 5, 1), (3, 5, 2), (1, 3, 2), (2, 5, 2), (8, 3, 1)])
def test_depthwise_matches_conv2d(side: int, kernel: int, stride: int) -> None:
    torch.manual_seed(0)
    ours = DepthwiseConv(6, kernel, stride).double()
    ref = torch.nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=6, bias=False).double()
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(3, 6, side, side, dtype=torch.double).to(memory_format=torch.channels_last).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    assert y.shape == y_ref.shape and torch.allclose(y, y_ref)
    g = torch.randn_like(y_ref)
    y.backward(g)
    y_ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad)
    assert torch.allclose(ours.weight.grad, ref.weight.grad)


def test_depthwise_gradcheck_on_one_by_one_map() -> None:
    conv = DepthwiseConv(2, 5, 1).double()
    x = torch.randn(2, 2, 1, 1, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,))
