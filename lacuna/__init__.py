"""Lacuna: local infilling for editors with masked-diffusion language models."""
