"""MoCap file readers: each parses one source format into a `posebank.motion.Motion` (metres, +Y up)."""
