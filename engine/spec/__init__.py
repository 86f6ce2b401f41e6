"""Torch-free: the validated settings of renders, animations and studies, and DD's file formats."""
