"""What the exercises make of a channel's signal quality: good, check, bad or no signal.

This module owns the seam between the DSP room's per-channel quality and everything the
exercises and the feedback views decide from it: :class:`ChannelVerdict` (a state and a
one-line reason) and :func:`verdicts`, which turns the latest quality results of the
channels into verdicts. A channel that is not ``good`` makes the guided signal check
wait, a repetition that uses it invalid, and the patient view say "check electrode" or
"no signal — wait" instead of a bar or praise.

Until the DSP room's channel-state object lands this reads the indicator grades of
:class:`emgfb.dsp.quality.ChannelQuality`. Those grades were made for a relaxed face: a
contraction raises the rest RMS and the low-frequency share, so away from rest only the
indicators a contraction cannot cause count (flat line, clipping, strong hum).
Imports ``emgfb.dsp.quality`` (its hints) only; quality results are duck-typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GOOD, CHECK, BAD, NO_SIGNAL = "good", "check", "bad", "no_signal"
STATES = (GOOD, CHECK, BAD, NO_SIGNAL)


@dataclass(frozen=True)
class ChannelVerdict:
    """The state of one channel and why.

    Attributes
    ----------
    state
        ``"good"``, ``"check"`` (usable but doubtful: fix it if you can), ``"bad"`` (not
        trustworthy: electrode off, clipping) or ``"no_signal"`` (nothing arrives, or not
        enough yet).
    reason
        One line for the clinician, ``""`` when good.
    """

    state: str
    reason: str = ""

    @property
    def good(self) -> bool:
        """True in the good state."""
        return self.state == GOOD


#: Verdict for a channel that has no quality result (nothing measured yet).
WAITING = ChannelVerdict(NO_SIGNAL, "no signal yet")


def verdict(quality: Any, at_rest: bool = False) -> ChannelVerdict:
    """The verdict on one channel's quality result (``None``: :data:`WAITING`).

    Parameters
    ----------
    quality
        A :class:`~emgfb.dsp.quality.ChannelQuality` (``state``, ``states``, ``hint``), or
        an object with ``state`` in :data:`STATES` and ``reason`` (the DSP room's channel
        state), or ``None``.
    at_rest
        The patient is asked to relax (signal check, rest baseline): the rest-level and
        movement indicators count too.
    """
    if quality is None:
        return WAITING
    state = getattr(quality, "state", None)
    if not hasattr(quality, "states") and state in STATES:  # a channel state with a reason
        return ChannelVerdict(state, str(getattr(quality, "reason", "") or ""))
    states: dict[str, str] = dict(getattr(quality, "states", {}) or {})
    if state == "unknown" or not states:
        return ChannelVerdict(NO_SIGNAL, str(getattr(quality, "hint", "") or "no signal yet"))
    from emgfb.dsp.quality import HINTS

    if states.get("flat") == "bad":
        return ChannelVerdict(BAD, HINTS["flat"])
    if states.get("clipping") == "bad":
        return ChannelVerdict(BAD, HINTS["clipping"])
    doubtful = [name for name in ("clipping", "mains") if states.get(name) == "bad"
                or (name == "clipping" and states.get(name) == "warn")]
    if at_rest:
        doubtful += [name for name in ("rest_rms", "motion") if states.get(name) == "bad"]
    if doubtful:
        return ChannelVerdict(CHECK, HINTS[doubtful[0]])
    return ChannelVerdict(GOOD, "")


def verdicts(qualities: Sequence[Any] | None, n_channels: int, at_rest: bool = False
             ) -> list[ChannelVerdict]:
    """:func:`verdict` for each of ``n_channels`` (missing results: :data:`WAITING`)."""
    q = list(qualities or [])
    return [verdict(q[i] if i < len(q) else None, at_rest) for i in range(n_channels)]


def patient_words(v: ChannelVerdict) -> str:
    """What the patient is told about a channel that is not good ("" when good)."""
    if v.state == GOOD:
        return ""
    if v.state == NO_SIGNAL:
        return "No signal — please wait"
    return "Check electrode — please wait"


#: Source states in which nothing arrives from the board.
SILENT_SOURCE_STATES = ("reconnecting", "failed", "stopped")


def live_verdicts(session: Any, at_rest: bool = False) -> list[ChannelVerdict]:
    """Verdicts for a running live session: every channel ``no_signal`` while its board is
    unplugged or reconnecting, else :func:`verdicts` of ``session.quality()``."""
    n = session.montage.n_channels
    status = getattr(getattr(session, "source", None), "status", None)
    state = getattr(status, "state", "streaming")
    if state in SILENT_SOURCE_STATES:
        detail = getattr(status, "detail", "")
        return [ChannelVerdict(NO_SIGNAL, f"board {state}" + (f": {detail}" if detail else ""))
                ] * n
    return verdicts(session.quality(), n, at_rest)
