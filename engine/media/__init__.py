"""Torch-free file I/O: atomic writes, PNG text chunks, video in and out, study grids."""
