"""Copy a GGUF with new metadata, through llama.cpp's own gguf-py (`gguf_new_metadata`).

Run as a script by `trainer.export.model` with the gguf-py vendored in the llama-cpp-python
sdist first on PYTHONPATH, so the writer is the one version-matched with the llama.cpp
that will read the file. Usage: `python -P stamp.py SPEC.json`, where the spec holds

    {"input": ..., "output": ..., "chat_template": ...,
     "special_tokens": {"eos": "<|im_end|>", "eot": "<|im_end|>"},
     "strings": {key: value}, "floats": {key: value}, "uints": {key: value}}

Tensor data is copied unchanged; only the key-value header is rewritten.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def stamp(spec: dict) -> None:
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata, find_token

    reader = gguf.GGUFReader(spec["input"], "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    tokens = reader.get_field(gguf.Keys.Tokenizer.LIST).contents()
    new: dict[str, MetadataDetails] = {}
    template = spec.get("chat_template")
    if template:
        new[gguf.Keys.Tokenizer.CHAT_TEMPLATE] = MetadataDetails(gguf.GGUFValueType.STRING, template)
    for name, text in spec.get("special_tokens", {}).items():
        key = getattr(gguf.Keys.Tokenizer, f"{name.upper()}_ID")
        # The first id is the one a tokenizer produces for that text.
        new[key] = MetadataDetails(gguf.GGUFValueType.UINT32, find_token(tokens, text)[0])
    for group, value_type in (
        ("strings", gguf.GGUFValueType.STRING),
        ("floats", gguf.GGUFValueType.FLOAT32),
        ("uints", gguf.GGUFValueType.UINT32),
    ):
        for key, value in spec.get(group, {}).items():
            new[key] = MetadataDetails(value_type, value)
    writer = gguf.GGUFWriter(spec["output"], arch=arch, endianess=reader.endianess)
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    copy_with_new_metadata(reader, writer, new, [])


if __name__ == "__main__":
    stamp(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
