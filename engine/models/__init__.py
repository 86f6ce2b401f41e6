"""The model files (registry, downloads) and the resident models a render needs."""
