"""The quantization modes by name: torch-free, so that a command line can offer them
without importing torch (``lacuna --version`` stays instant)."""

MODES = ("none", "int8", "nf4", "torch-int8")
CHOICES = ("none", "int8", "nf4", "auto", "torch-int8")
BNB_MODES = ("int8", "nf4")
