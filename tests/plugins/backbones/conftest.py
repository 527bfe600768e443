"""Backbone tests share a 2-core machine: one intra-op thread avoids oversubscription."""
import torch

torch.set_num_threads(1)
