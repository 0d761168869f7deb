"""The dataclasses the store's domain methods return (plain values, no connection)."""

from __future__ import annotations

from dataclasses import dataclass

from therapist_app.core.dialogue_format import Decision, Speaker


@dataclass(frozen=True)
class Profile:
    display_name: str | None
    created_at: str


@dataclass(frozen=True)
class Client:
    id: int
    code: str  # pseudonymous code, the only required identifier
    display_name: str | None
    created_at: str


@dataclass(frozen=True)
class Session:
    id: int
    client_id: int
    conversation_id: str
    started_at: str
    ended_at: str | None


@dataclass(frozen=True)
class Utterance:
    id: int
    session_id: int
    speaker: Speaker
    text: str
    created_at: str
    emotion_detected: str | None
    emotion_confidence: float | None
    emotion_corrected: str | None
    risk_flags: tuple[str, ...]
    #: For therapist turns: "suggestion" (an accepted or edited draft) or "own" (typed
    #: by the therapist); None for client turns and turns stored before it was kept.
    origin: str | None = None

    @property
    def emotion(self) -> str | None:
        """The therapist's correction when there is one, else what was detected."""
        return self.emotion_corrected or self.emotion_detected


@dataclass(frozen=True)
class Suggestion:
    id: int
    utterance_id: int
    model_id: str
    strategy: str | None
    text: str
    latency_ms: float
    created_at: str


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    suggestion_id: int
    decision: Decision
    final_text: str | None  # None when rejected
    created_at: str


@dataclass(frozen=True)
class Note:
    session_id: int
    text: str
    updated_at: str


@dataclass(frozen=True)
class RiskAcknowledgement:
    """The therapist saw the crisis warning on a flagged client utterance."""

    id: int
    utterance_id: int
    categories: tuple[str, ...]
    acknowledged_by: str
    acknowledged_at: str


@dataclass(frozen=True)
class Transcript:
    session: Session
    utterances: tuple[Utterance, ...]
    suggestions: tuple[Suggestion, ...]
    decisions: tuple[DecisionRecord, ...]
    acknowledgements: tuple[RiskAcknowledgement, ...] = ()

    def unacknowledged_risk(self) -> Utterance | None:
        """The latest flagged client utterance whose warning nobody acknowledged."""
        seen = {a.utterance_id for a in self.acknowledgements}
        return next((u for u in reversed(self.utterances) if u.risk_flags and u.id not in seen), None)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    action: str
    client_id: int | None
    session_id: int | None
    object_id: int | None
    count: int | None


@dataclass(frozen=True)
class ModelRecord:
    id: int
    path: str
    sha256: str
    approved: bool
    added_at: str


@dataclass(frozen=True)
class IntegrityReport:
    ok: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Erasure:
    """What `erase_client` did. `set_aside` names earlier copies of the store (kept by a
    restore) that still hold the client's records: erasing cannot reach into them."""

    sessions: int
    compacted: bool
    set_aside: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        said = [f"The client and {self.sessions} session(s) were erased."]
        if not self.compacted:
            said.append(
                "Their text may remain in the file's free space until a compaction "
                "finishes (the disk was full or the app stopped): it is retried "
                "every time the records are opened. Free some space, then reopen."
            )
        if self.set_aside:
            said.append(
                "Copies set aside by an earlier restore still hold their records: "
                + ", ".join(self.set_aside)
                + ". Delete them if you no longer need them."
            )
        return " ".join(said)
