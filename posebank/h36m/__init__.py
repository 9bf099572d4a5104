"""Human3.6M: readers of the layouts users hold, the bank source, annotation shards with true 2D and 3D,
and the paper's evaluation protocols P1, P2, P3.

Modules: names (sequences, cameras, image paths), cameras (cameras.pkl with restricted unpickling;
world <-> camera, projection), readers (official CDF, VideoPose3D npz, mmpose npz), dataset (layout
detection, world and per-camera sequences), canonical (name mapping to j13/j17, bank Motion).
The licence forbids shipping the data: nothing of it is in the repository.
"""
