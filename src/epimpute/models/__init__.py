"""Imputation models: plain ``nn.Module`` networks and their imputers; no files, no CLI."""
