"""Several conversations at once, their turns ending at the same instant: how long do they wait for the reply, and
does reply audio keep up with real-time playback at every client?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from client.file_client import last_voiced_ms, talk

JITTER_BUFFER_MS = 120  # a client starts playing this long after the first audio, as the desktop client does


@dataclass
class PlaybackCheck:
    voice_to_voice_ms: float | None
    audio_ms: float
    gap_ms: float  # silence a real-time player would have hit waiting for audio that had not arrived
    timings: dict[str, float] = field(default_factory=dict)  # the gateway's response.done timings


def playback_gaps(arrivals: list[tuple[float, float]]) -> tuple[float, float]:
    """(audio ms, gap ms) for audio chunks (arrival time s, duration ms) played from first arrival + jitter buffer."""
    if not arrivals:
        return 0.0, 0.0
    clock = arrivals[0][0] + JITTER_BUFFER_MS / 1000.0  # when the player starts
    gap = 0.0
    for arrived, duration_ms in arrivals:
        if arrived > clock:  # the player ran dry before this chunk arrived
            gap += (arrived - clock) * 1000.0
            clock = arrived
        clock += duration_ms / 1000.0
    return sum(d for _, d in arrivals), gap


async def one_conversation(url: str, pcm: bytes, rate: int) -> PlaybackCheck:
    result = await talk(url, None, pcm, rate, realtime=True, timeout_s=120)
    arrivals = [(t, ms) for t, ms in result.audio_arrivals]
    audio_ms, gap_ms = playback_gaps(arrivals)
    return PlaybackCheck(result.voice_to_voice_ms, audio_ms, gap_ms, result.server_timings)


def aligned(clips: list[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    """The clips with silence put before them so that their last voiced samples fall at the same time."""
    ends = [last_voiced_ms(pcm, rate) for pcm, rate in clips]
    out = []
    for (pcm, rate), end in zip(clips, ends, strict=True):
        lead = int((max(ends) - end) * rate / 1000)
        out.append((bytes(2 * lead) + pcm, rate))
    return out


async def run_concurrent(url: str, clips: list[tuple[bytes, int]], sessions: int, rounds: int) -> list[PlaybackCheck]:
    checks: list[PlaybackCheck] = []
    for round_index in range(rounds):
        batch = aligned([clips[(round_index * sessions + i) % len(clips)] for i in range(sessions)])
        checks += await asyncio.gather(*(one_conversation(url, pcm, rate) for pcm, rate in batch))
    return checks
