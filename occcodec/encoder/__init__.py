"""The encoder: presets, sampling, architecture search and training (TensorFlow lives here)."""
