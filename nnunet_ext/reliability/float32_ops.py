"""Which numerically sensitive operations run in which dtype, recorded below autocast.

Under CUDA autocast (nnU-Net trains in float16 on a GPU) softmax, exp, log, sum and the norms run in float32 by
autocast's own lists; CPU autocast keeps them in the low-precision dtype, so a CPU run under autocast cannot stand
for a CUDA run. What can be checked on a CPU is that *our* sensitive computations cast to float32 themselves (and
so are float32 under any autocast): :class:`SensitiveOpRecorder` is a ``TorchDispatchMode``, which sees every aten
operation with the dtypes autocast has already chosen, and records the floating dtypes of the inputs of the
operations in :data:`SENSITIVE_OPS`.
"""

from typing import List, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SENSITIVE_OPS = frozenset({"_softmax", "_log_softmax", "logsumexp", "exp", "log", "log1p", "expm1", "sum", "amax",
                           "log_sigmoid_forward", "binary_cross_entropy_with_logits", "nll_loss_forward",
                           "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_attention_math",
                           "bmm", "baddbmm"})


class SensitiveOpRecorder(TorchDispatchMode):
    """``with SensitiveOpRecorder() as recorder: ...``; then ``recorder.calls`` holds ``(op name, input dtypes)``
    and :meth:`low_precision` those with a floating input that is not float32."""

    def __init__(self):
        super().__init__()
        self.calls: List[Tuple[str, Tuple[torch.dtype, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SENSITIVE_OPS:
            dtypes = tuple(a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point())
            self.calls.append((name, dtypes))
        return func(*args, **(kwargs or {}))

    def low_precision(self) -> List[Tuple[str, Tuple[torch.dtype, ...]]]:
        return [(name, dtypes) for name, dtypes in self.calls if any(d != torch.float32 for d in dtypes)]
