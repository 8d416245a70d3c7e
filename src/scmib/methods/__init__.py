"""Building blocks shared by several methods (reductions, neighbour searches)."""
