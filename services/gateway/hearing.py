"""Whether a transcript is worth answering: Whisper writes text for mumbling and noise too, with low confidence."""

from __future__ import annotations

from services.common.messages import SttFinal
from services.gateway.settings import GatewaySettings


def unclear_reason(final: SttFinal, settings: GatewaySettings) -> str | None:
    """Why the words were probably not said ("low_logprob", "no_speech"); None when the transcript can be answered.
    A backend that reports no confidence is trusted."""
    text = final.text.strip()
    if not text:
        return None  # nothing to answer: the turn ends quietly
    short = len(text.split()) < 3
    logprob_min = settings.unclear_logprob_short if short else settings.unclear_logprob
    if final.avg_logprob is not None and final.avg_logprob < logprob_min:
        return "low_logprob"
    if final.no_speech_prob is not None and final.no_speech_prob > settings.unclear_no_speech:
        return "no_speech"
    return None
