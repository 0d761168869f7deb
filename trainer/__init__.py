"""Research toolkit: data import, SFT, RL, evaluation and GGUF export for the app's models."""
