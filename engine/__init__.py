"""Disco Diffusion 5.x engine: render CLIP-guided diffusion images, usable without Discord.

Importing `engine` (and `engine.spec.render`) stays torch-free; the heavy modules are imported on use.
"""
__version__ = "0.1.0"
