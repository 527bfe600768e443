"""Training: the loop (``loop``), the core-owned classifier (``classifier``), optimisers and
schedules (``optim``), and the run's device and seeding (``runtime``)."""
