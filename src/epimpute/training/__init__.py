"""Training: sampling from a store, masking, loops, checkpoints, extension of trained models."""
