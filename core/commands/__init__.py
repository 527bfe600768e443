"""Sub-commands of the `facebone` CLI: one module each, defining ``register(subparsers)``."""
