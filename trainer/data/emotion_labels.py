"""Public corpora's emotion labels mapped onto our taxonomy (assets/emotions.toml).

ESConv, EmpatheticDialogues and GoEmotions use the shared table in
`assets/emotion_mappings.toml` (through `taxonomy.emotion_mapping`); CounselChat's topic
slugs, which only sometimes name an emotion, are mapped here.
"""

from __future__ import annotations

from therapist_app.core.taxonomy import EMOTION_SOURCES, emotion_mapping, emotions

# CounselChat's topic slugs that name an emotion; other topics carry none.
_COUNSELCHAT = {
    "anxiety": "anxiety",
    "depression": "depression",
    "stress": "stress",
    "anger-management": "anger",
    "grief-and-loss": "grief",
    "self-esteem": "shame",
}

SCHEMES = (*EMOTION_SOURCES, "counselchat")


def map_emotion(scheme: str, label: str | None, strict: bool = True) -> str | None:
    """Our emotion id for `label` in a corpus's label set, or None for no label.

    A label that is already one of our ids passes through. With `strict`, an unknown
    label raises ValueError; without it (corpora whose labels are topics, not emotions)
    it maps to None.

    >>> map_emotion("esconv", "Nervousness")
    'stress'
    >>> map_emotion("counselchat", "relationships", strict=False) is None
    True
    """
    if label is None or not str(label).strip():
        return None
    key = str(label).strip().casefold()
    if key in emotions():
        return key
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    table = _COUNSELCHAT if scheme == "counselchat" else emotion_mapping(scheme)
    if key in table:
        return table[key]
    if strict:
        raise ValueError(f"emotion label {label!r} has no mapping in the {scheme} scheme")
    return None
