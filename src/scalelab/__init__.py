"""scalelab: how much better does a model get as it grows? Data, models, training, tracking."""
