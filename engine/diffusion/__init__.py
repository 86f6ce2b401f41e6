"""The CLIP-guided diffusion algorithm: one still image from a RenderSpec."""
