"""Disco Diffusion animation: 2D and 3D motion, depth, optical flow, the frame loop."""
