"""Training and evaluation for the landmark zoo: dataset readers, metrics, the evaluation CLI."""
