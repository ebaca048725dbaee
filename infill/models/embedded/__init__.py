"""The models Lacuna builds itself: the embedded default (SmolLM2-135M and its two views)
and the tiny random test model."""
