"""Built-in training objectives (the loss as named terms): classification and distillation."""
