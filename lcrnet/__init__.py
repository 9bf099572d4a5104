"""lcrnet: the LCR-Net++ multi-person 2D+3D pose detector (Rogez et al., TPAMI 2019) on torchvision parts.

Modules: config (ModelConfig), anchors (PoseAnchors: the 2K+1 pose classes), poses (pose boxes,
centring, D3D), targets (ground-truth boxes, proposal labels, encode/decode), loss (eq. 3-5),
backbone (ResNet-50 C4 / FPN), heads (pose RoI head with iterative refinement), model (LCRNet,
build_model), postprocess (rescoring eq. 6, NMS, PPI), augment (left-right mirroring).
May import posebank; posebank never imports lcrnet.
"""
