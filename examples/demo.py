def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list."""
    [MASK]


def clamp(x: float, low: float, high: float) -> float:
    """Limit x to the range [low, high]."""
    return [MASK]
