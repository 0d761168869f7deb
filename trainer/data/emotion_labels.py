"""Public corpora's emotion labels mapped onto our taxonomy (assets/emotions.toml).

All importers read the mapping through `map_emotion`, the one place to switch to the
shared `assets/emotion_mappings.toml` loader once taxonomy.py offers it.
"""

from __future__ import annotations

from therapist_app.core.taxonomy import emotions

# ESConv's `emotion_type` values (Liu et al., 2021).
_ESCONV = {
    "anxiety": "anxiety",
    "nervousness": "anxiety",
    "depression": "depression",
    "sadness": "sadness",
    "pain": "sadness",
    "anger": "anger",
    "jealousy": "anger",
    "fear": "fear",
    "shame": "shame",
    "guilt": "guilt",
    "disgust": "disgust",
}

# EmpatheticDialogues' 32 situation labels (Rashkin et al., 2019).
_EMPATHETIC = {
    "afraid": "fear",
    "terrified": "fear",
    "anxious": "anxiety",
    "apprehensive": "anxiety",
    "anticipating": "stress",
    "angry": "anger",
    "annoyed": "anger",
    "furious": "anger",
    "jealous": "anger",
    "ashamed": "shame",
    "embarrassed": "shame",
    "guilty": "guilt",
    "disgusted": "disgust",
    "sad": "sadness",
    "disappointed": "sadness",
    "devastated": "grief",
    "sentimental": "sadness",
    "nostalgic": "sadness",
    "lonely": "loneliness",
    "hopeful": "hope",
    "grateful": "hope",
    "proud": "hope",
    "confident": "hope",
    "joyful": "hope",
    "excited": "hope",
    "content": "hope",
    "caring": "neutral",
    "faithful": "neutral",
    "impressed": "neutral",
    "prepared": "neutral",
    "surprised": "neutral",
    "trusting": "neutral",
}

# CounselChat's topic slugs that name an emotion; other topics carry none.
_COUNSELCHAT = {
    "anxiety": "anxiety",
    "depression": "depression",
    "stress": "stress",
    "anger-management": "anger",
    "grief-and-loss": "grief",
    "self-esteem": "shame",
}

_SCHEMES = {"esconv": _ESCONV, "empathetic_dialogues": _EMPATHETIC, "counselchat": _COUNSELCHAT}


def map_emotion(scheme: str, label: str | None, strict: bool = True) -> str | None:
    """Our emotion id for `label` in a corpus's label set, or None for no label.

    A label that is already one of our ids passes through. With `strict`, an unknown
    label raises ValueError; without it (corpora whose labels are topics, not emotions)
    it maps to None.

    >>> map_emotion("esconv", "Nervousness")
    'anxiety'
    >>> map_emotion("counselchat", "relationships", strict=False) is None
    True
    """
    if label is None or not str(label).strip():
        return None
    key = str(label).strip().casefold()
    if key in emotions():
        return key
    try:
        table = _SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {', '.join(_SCHEMES)}") from None
    if key in table:
        return table[key]
    if strict:
        raise ValueError(f"emotion label {label!r} has no mapping in the {scheme} scheme")
    return None
