"""Trained models into the files the app loads: whole models as verified, quantised GGUF
files with manifests (`model`, checked by `verify`, metadata written by `stamp`), and
LoRA adapters as the GGUF the app applies to its bundled model (`adapter`)."""
