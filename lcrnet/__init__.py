"""lcrnet: the LCR-Net++ multi-person 2D+3D pose detector (Rogez et al., TPAMI 2019) on torchvision parts.

The model: config (ModelConfig), anchors (PoseAnchors: the 2K+1 pose classes), poses (pose boxes,
centring, D3D), targets (ground-truth boxes, proposal labels, encode/decode), loss (eq. 3-5),
backbone (ResNet-50 C4 / FPN), heads (pose RoI head with iterative refinement), model (LCRNet,
build_model), postprocess (rescoring eq. 6, NMS, PPI), augment (mirroring, zoom).
Using it: job_config (TrainConfig, EvalConfig, PredictConfig), data (annotation shards -> Dataset),
engine (training and inference loops), checkpoint (save / load / rebuild), train (the training job:
schedule, resume, DDP), metrics (PCK(h), MPJPE, AP), evaluate (NMS vs PPI vs upper bound), predict
and visualize (detections to JSON, Parquet and overlay PNGs).
May import posebank; posebank never imports lcrnet.
"""
