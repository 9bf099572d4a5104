"""Losses of one pose estimate (classification + anchor-specific regression), eq. 3-5.

The RPN loss (eq. 2) is torchvision's own; the total is L = L_loc + sum over estimates of
(L_classif + L_reg) (eq. 1 and sec 3.4: a loss on every estimate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pose_head_loss(
    class_logits: torch.Tensor,
    pose_regression: torch.Tensor,
    labels: torch.Tensor,
    regression_targets: torch.Tensor,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log loss of the true class (eq. 3) and smooth-L1 on the true class's regression only (eq. 4-5).

    Args:
        class_logits: (S, C) logits of the S sampled proposals of the batch, C = 2K + 1.
        pose_regression: (S, C * 5J) anchor-specific regressions.
        labels: (S,) int64 true class in 0..2K (0 = background: no regression loss, the [c_B >= 1] of eq. 4).
        regression_targets: (S, 5J) targets from targets.encode (rows of background proposals are ignored).
        beta: smooth-L1 switch point (1.0 = eq. 5).

    Returns:
        loss_cls: scalar, mean over the S proposals.
        loss_reg: scalar, sum over positive proposals and the 5J coordinates divided by S (as
            torchvision's fastrcnn_loss), so exactly 0 when no proposal is on a person.
    """
    num = labels.numel()
    if num == 0:
        zero = class_logits.sum() * 0.0 + pose_regression.sum() * 0.0
        return zero, zero.clone()
    loss_cls = F.cross_entropy(class_logits, labels)
    pos = torch.where(labels > 0)[0]
    per_class = pose_regression.reshape(num, class_logits.shape[1], -1)
    loss_reg = F.smooth_l1_loss(per_class[pos, labels[pos]], regression_targets[pos], beta=beta, reduction="sum")
    return loss_cls, loss_reg / num
