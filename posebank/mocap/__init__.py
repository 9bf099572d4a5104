"""MoCap file readers: each parses one source format into a `posebank.mocap.motion.Motion` (metres, +Y up)."""
