"""What makes a draft good, read from its words: it carries out its strategy, meets the
client's feeling, is well formed, does not repeat itself, and has a spoken turn's length.

Each check returns 0..1 (repetition -1..0) and reads the surface of the reply: what a
therapist scanning a suggestion sees. The trainer's reward pack wraps these functions in
TRL's signature; the app's best-of-N ranking calls them directly.
"""

from __future__ import annotations

import re
from typing import Sequence

from therapist_app.core.dialogue_format import parse_reply
from therapist_app.core.scoring.text import ngrams, token_f1, turn_text, words
from therapist_app.core.taxonomy import emotions, strategies

# Words a counsellor would use to name each feeling back (written for this project).
FEELING_WORDS: dict[str, tuple[str, ...]] = {
    "anxiety": (
        "anxious",
        "anxiety",
        "worried",
        "worry",
        "worrying",
        "nervous",
        "on edge",
        "uneasy",
        "tense",
        "dread",
        "unsettled",
        "uncertain",
        "panicky",
    ),
    "depression": (
        "low",
        "down",
        "flat",
        "empty",
        "hopeless",
        "heavy",
        "exhausted",
        "drained",
        "numb",
        "worn out",
        "stuck",
        "tired",
    ),
    "sadness": (
        "sad",
        "sadness",
        "hurt",
        "hurting",
        "heartbroken",
        "upset",
        "tearful",
        "disappointed",
        "painful",
        "down",
    ),
    "anger": (
        "angry",
        "anger",
        "frustrated",
        "frustrating",
        "furious",
        "annoyed",
        "irritated",
        "resentful",
        "fed up",
        "unfair",
        "mad",
    ),
    "fear": ("afraid", "scared", "frightened", "frightening", "fear", "terrified", "unsafe", "threatened", "alarming"),
    "shame": ("ashamed", "shame", "embarrassed", "humiliated", "exposed", "judged", "not good enough", "small"),
    "guilt": ("guilt", "guilty", "regret", "blame", "blaming", "responsible", "wish you had"),
    "disgust": ("disgust", "disgusted", "repulsed", "revolted", "sickened", "gross"),
    "loneliness": ("lonely", "loneliness", "alone", "isolated", "disconnected", "left out", "on your own", "unseen"),
    "grief": ("grief", "grieving", "loss", "miss", "missing", "mourning", "gone"),
    "stress": (
        "stressed",
        "stress",
        "overwhelmed",
        "overwhelming",
        "pressure",
        "stretched",
        "too much",
        "swamped",
        "juggling",
    ),
    "hope": (
        "hope",
        "hopeful",
        "relief",
        "relieved",
        "proud",
        "lighter",
        "encouraged",
        "optimistic",
        "progress",
        "glad",
    ),
    "neutral": (),
}
REFLECTIVE_FRAMES = re.compile(
    r"\b(sounds? like|it sounds|that sounds|i hear|i can hear|it seems|you seem|seems like|"
    r"you feel|you're feeling|you are feeling|you've been feeling|you felt|must (?:feel|be)|"
    r"makes sense|understandabl[ey]|i imagine|i can imagine)\b"
)
DISMISSIVE = re.compile(
    r"\b(calm down|don'?t worry|cheer up|get over it|just relax|stop feeling|you shouldn'?t feel|"
    r"bright side|not a big deal|no big deal|could be worse|overreacting|toughen up|snap out of it|"
    r"stop being)\b"
)
_OPEN_QUESTION = re.compile(r"\b(what|how|when|where|which|who|tell me|could you say|can you say|would you say)\b")
_CLOSED_QUESTION = re.compile(r"(^|[.!?]\s+)(do|does|did|are|is|was|were|have|has|can|could|would|will)\b")
_SUMMARY_FRAME = re.compile(
    r"\b(if i've got (?:this|that|it) right|if i understand|let me (?:check|see if|make sure)|"
    r"so what i'm hearing|what i'm hearing|so you're saying|you're saying|in other words|"
    r"so on one hand|to sum up|am i right|is that right|have i got that right|did i get that right)\b"
)
_FIRST_PERSON_EXPERIENCE = re.compile(
    r"\b(i've|i have (?:felt|been|had)|when i|i remember|i once|i too|me too|i went through|in my own)\b"
)
_AFFIRMING = re.compile(
    r"\b(strength|strong|courage|brave|took a lot|well done|you managed|you've managed|proud|"
    r"makes sense|matters|you did|you're doing|you are doing|capable|effort|progress|it's okay to|"
    r"it is okay to|that's understandable|took care)\b"
)
_INVITATIONAL = re.compile(
    r"\b(could try|might try|might help|one idea|one small|would you be open|what if you|maybe|perhaps|"
    r"you could|some people find|would it help|how about)\b"
)
_DIRECTIVE = re.compile(r"\b(you must|you need to|you have to|you should)\b")
_INFORMATIVE = re.compile(
    r"\b(many people|a lot of people|it is common|it's common|is common|often|usually|research|"
    r"can be|tends? to|is a normal|is normal|is a natural|is natural|is known)\b"
)
_STOPWORDS = frozenset(
    "i me my you your it its is am are was were be been a an the and or but so to of in on at for with "
    "that this just really very what how do does did not no yes have has had i'm you're it's".split()
)
_LABEL_OR_TAG = re.compile(r"(?im)^\s*(client|user|patient|therapist|counsell?or|assistant)\s*:|\[[^\]\n]{0,80}\]|<\|")
_ENDS_SENTENCE = re.compile(r"[.!?…][\"'”’)\]]*$")


def _mentions(text: str, phrases: Sequence[str]) -> bool:
    return any(re.search(r"\b" + re.escape(p) + r"\b", text) for p in phrases)


def reflection_of_feeling(reply: str, emotion: str | None) -> float:
    """1.0 names the client's feeling in a reflective frame, 0.6 names it plainly, 0.3
    has only the frame, 0.0 neither or a dismissive phrase. For `neutral` (or no
    emotion) any reflective frame counts as acknowledgement.

    >>> reflection_of_feeling("It sounds like you feel really alone at the moment.", "loneliness")
    1.0
    >>> reflection_of_feeling("Loneliness can be hard.", "loneliness")
    0.6
    >>> reflection_of_feeling("Don't worry, you'll be fine.", "anxiety")
    0.0
    >>> reflection_of_feeling("What did you have for lunch?", "grief")
    0.0
    """
    text = reply.lower().replace("’", "'")
    if not text or DISMISSIVE.search(text):
        return 0.0
    framed = bool(REFLECTIVE_FRAMES.search(text))
    if emotion in (None, "neutral"):
        return 1.0 if framed else 0.3
    if emotion not in FEELING_WORDS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(emotions())}")
    named = _mentions(text, FEELING_WORDS[emotion])
    return 1.0 if named and framed else 0.6 if named else 0.3 if framed else 0.0


def _content(text: str) -> str:
    return " ".join(w for w in words(text) if w not in _STOPWORDS)


def adherence(reply: str, strategy: str, client_words: str | None = None, emotion: str | None = None) -> float:
    """How well `reply` carries out `strategy` (0..1).

    >>> adherence("What feels hardest about it?", "question")
    1.0
    >>> adherence("It sounds hard.", "question")
    0.0
    >>> adherence("You should stop worrying.", "suggestion")
    0.3
    >>> adherence("You could try writing the worry down before bed.", "suggestion")
    1.0
    >>> adherence("So if I've got this right, the rent went up again. Is that it?", "restatement", "My rent went up")
    0.8
    """
    text = reply.lower().replace("’", "'")
    if not text:
        return 0.0
    if strategy == "question":
        if "?" not in text:
            return 0.0
        return 1.0 if _OPEN_QUESTION.search(text) else 0.6 if _CLOSED_QUESTION.search(text) else 0.4
    if strategy == "restatement":
        overlap = token_f1(_content(text), _content(client_words or ""))
        score = min(1.0, overlap / 0.4) * (0.5 if text.rstrip().endswith("?") else 1.0)
        # Checking understanding ("If I've got this right, ... is that it?") is a
        # restatement that ends in a question by design.
        if _SUMMARY_FRAME.search(text) and overlap > 0:
            score = max(score, 0.8)
        return score
    if strategy == "reflection":
        return reflection_of_feeling(reply, emotion)
    if strategy == "self_disclosure":
        return 0.6 * bool(_FIRST_PERSON_EXPERIENCE.search(text)) + 0.4 * ("you" in words(text))
    if strategy == "affirmation":
        return 1.0 if _AFFIRMING.search(text) else 0.2
    if strategy == "suggestion":
        return 1.0 if _INVITATIONAL.search(text) else 0.3 if _DIRECTIVE.search(text) else 0.1
    if strategy == "information":
        return 1.0 if _INFORMATIVE.search(text) else 0.3 if not text.endswith("?") else 0.0
    if strategy == "other":
        return 1.0
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(strategies())}")


def format_score(raw: str) -> float:
    """1.0 for one to three whole sentences and nothing else; lower for cut-off,
    over-long, labelled or empty output.

    >>> [format_score(t) for t in ("It sounds like a lot.", "Therapist: It sounds like", "")]
    [1.0, 0.5, 0.0]
    """
    parsed = parse_reply(raw)
    if not parsed.text:
        return 0.0
    score = 1.0
    if parsed.truncated:
        score -= 0.5
    if _LABEL_OR_TAG.search(turn_text(raw)):
        score -= 0.25
    if not _ENDS_SENTENCE.search(parsed.text):
        score -= 0.25
    return max(0.0, score)


def repetition(raw: str) -> float:
    """Minus the share of 4-grams that repeat an earlier 4-gram of the generated turn
    (-1..0); padding after the end-of-turn marker is not part of the turn.

    >>> repetition("I hear you and I hear you and I hear you")
    -0.5
    >>> repetition("That sounds hard.<|im_end|><|im_end|><|im_end|>")
    -0.0
    """
    grams = ngrams(words(turn_text(raw)), 4)
    return -(len(grams) - len(set(grams))) / len(grams) if grams else -0.0


# A general-purpose assistant's phrases, not a counsellor's: they ignore what was said.
_ASSISTANT_SPEAK = re.compile(
    r"\b(?:(?:happy|glad) to help|how (?:can|may) i (?:help|assist)|what can i do for you|feel free to|"
    r"let me know if|as an assistant|i'm here to help|is there anything else)\b"
)


def register(reply: str) -> float:
    """0.0 for a general-purpose assistant's phrasing, 1.0 otherwise.

    >>> register("I'd be happy to help. What can I do for you today?"), register("What keeps you up at night?")
    (0.0, 1.0)
    """
    return 0.0 if _ASSISTANT_SPEAK.search(reply.lower().replace("’", "'")) else 1.0


# A spoken counselling turn: most are 8 to 35 words (real sessions' replies average
# about 19); shorter ones tend to be generic, longer ones lecture.
SHORTEST_GOOD, LONGEST_GOOD = 8, 35


def length_score(reply: str) -> float:
    """1.0 for a reply of 8-35 words, falling linearly to 0 at 2 words and at 70.

    >>> [round(length_score(" ".join(["w"] * n)), 2) for n in (2, 5, 8, 20, 35, 52, 70)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.51, 0.0]
    """
    n = len(words(reply))
    if n < SHORTEST_GOOD:
        return max(0.0, (n - 2) / (SHORTEST_GOOD - 2))
    if n > LONGEST_GOOD:
        return max(0.0, (70 - n) / (70 - LONGEST_GOOD))
    return 1.0
