"""A linear warm-up followed by nnU-Net's polynomial decay, with nnU-Net's scheduler interface
(``lr_scheduler.step(current_epoch)`` at the start of every epoch). Stateless: the learning rate follows from the
epoch, so a run continued with ``--c`` goes on where it was."""

from torch.optim.lr_scheduler import _LRScheduler


def warmup_poly_learning_rate(initial_lr: float, epoch: int, max_epochs: int, warmup_epochs: int,
                              exponent: float = 0.9) -> float:
    """Epochs ``0 .. warmup_epochs - 1``: ``initial_lr * (epoch + 1) / warmup_epochs`` (linear warm-up, as Primus's
    trainers); then ``initial_lr * (1 - (epoch - warmup) / (max_epochs - warmup)) ** exponent`` (nnU-Net's poly)."""
    if epoch < warmup_epochs:
        return initial_lr * (epoch + 1) / warmup_epochs
    remaining = max(1, max_epochs - warmup_epochs)
    return initial_lr * max(0.0, 1 - (epoch - warmup_epochs) / remaining) ** exponent


class WarmupPolyLRScheduler(_LRScheduler):
    def __init__(self, optimizer, initial_lr: float, max_epochs: int, warmup_epochs: int):
        self.initial_lr, self.max_epochs, self.warmup_epochs = initial_lr, max_epochs, warmup_epochs
        super().__init__(optimizer, -1)

    def get_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, current_step=None):
        epoch = max(0, self.last_epoch + 1) if current_step is None else current_step
        self.last_epoch = epoch
        lr = warmup_poly_learning_rate(self.initial_lr, epoch, self.max_epochs, self.warmup_epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._last_lr = [lr for _ in self.optimizer.param_groups]
