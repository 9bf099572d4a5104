"""An auxiliary training loss: joint heatmaps read from the backbone's finest feature map.

Not in the paper. LCR-Net++ teaches the backbone where joints are only through the pose regression of
a few sampled RoIs: 32 boxes per image, 8 of them on people. From random weights that signal is thin,
and what the regression then adds to the anchors is small (BENCHMARKS.md). A dense signal, one
Gaussian per annotated joint on the finest map (stride 4 for the FPN backbones), reaches every
location of every image, as the keypoint heads of Mask R-CNN and the heatmaps of CenterNet do. It is a
1x1 convolution used in training only: inference and checkpoints' outputs do not change, and with
`ModelConfig.joint_heatmap_weight = 0` (the default) the model is the paper's.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import sigmoid_focal_loss


class JointHeatmapLoss(nn.Module):
    """Per-joint logits (J channels) from a feature map, and their loss against Gaussian targets.

    Args:
        in_channels: channels of the feature map.
        num_joints: J.
        sigma_cells: Gaussian radius of a joint, in cells of the map.
    """

    def __init__(self, in_channels: int, num_joints: int, sigma_cells: float = 1.0) -> None:
        super().__init__()
        self.logits = nn.Conv2d(in_channels, num_joints, kernel_size=1)
        nn.init.normal_(self.logits.weight, std=0.01)
        nn.init.constant_(self.logits.bias, -4.6)  # sigmoid ~0.01: most cells hold no joint
        self.sigma_cells = sigma_cells

    def forward(
        self, features: torch.Tensor, stride: float, poses_2d: list[torch.Tensor], visible: list[torch.Tensor]
    ) -> torch.Tensor:
        """Focal loss (RetinaNet's, gamma 2: the many empty cells weigh little) of the J heatmaps against
        each image's annotated joints, summed over cells and divided by the number of annotated joints.

        Args:
            features: (B, C, h, w) the finest map of the network input (padded batch).
            stride: network-input pixels per cell.
            poses_2d: per image (N, J, 2) px of the network input.
            visible: per image (N, J) bool, the annotated joints (others teach nothing).

        Returns:
            scalar loss.
        """
        logits = self.logits(features)
        targets = self.targets(logits.shape, stride, poses_2d, visible)
        joints = sum(int(v.sum()) for v in visible)
        return sigmoid_focal_loss(logits, targets, alpha=-1, gamma=2.0, reduction="sum") / max(joints, 1)

    def targets(
        self, shape: torch.Size, stride: float, poses_2d: list[torch.Tensor], visible: list[torch.Tensor]
    ) -> torch.Tensor:
        """(B, J, h, w) in [0, 1]: per joint, the max over people of a Gaussian at the joint's cell."""
        b, j, h, w = shape
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
        out = torch.zeros((b, j, h, w))
        sigma_px = self.sigma_cells * stride
        for i, (pose, vis) in enumerate(zip(poses_2d, visible)):
            if pose.numel() == 0:
                continue
            pose, vis = pose.detach().float().cpu(), vis.bool().cpu()
            gy = torch.exp(-((ys[None, None, :] - pose[..., 1:2]) ** 2) / (2 * sigma_px**2))  # (N, J, h)
            gx = torch.exp(-((xs[None, None, :] - pose[..., 0:1]) ** 2) / (2 * sigma_px**2))  # (N, J, w)
            g = gy[..., :, None] * gx[..., None, :] * vis[..., None, None]
            out[i] = g.amax(dim=0)
        return out.to(device=self.logits.weight.device)
