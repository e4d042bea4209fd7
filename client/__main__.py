"""``python -m client`` / ``s2s-client``: talk to an s2s gateway (local, or the one `make deploy-runpod` made)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from client.echo import EchoMode, EchoUnavailable, aec_available
from client.endpoint import resolve
from client.file_client import talk
from client.realtime import ConnectError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="s2s-client",
        description="Talk to an s2s gateway over the OpenAI Realtime protocol: a live conversation through the microphone and speaker (until Ctrl-C), or one question from a WAV file (--input).",
    )
    parser.add_argument(
        "--url",
        help="gateway endpoint, ws://HOST:PORT/v1/realtime (default: $S2S_URL, then the RunPod deploy state, then ws://127.0.0.1:8000/v1/realtime)",
    )
    parser.add_argument("--token", help="bearer token (default: $S2S_TOKEN, or the deploy state's)")
    parser.add_argument("--input", type=Path, help="a WAV file to speak (mono or stereo, any rate)")
    parser.add_argument("--output", type=Path, help="where to write the reply audio (WAV)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=True,
        help="stream the file at speaking speed, as a microphone would (default)",
    )
    pace.add_argument("--fast", dest="realtime", action="store_false", help="stream the file as fast as possible")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the reply (default 60)")
    mic = parser.add_argument_group("microphone mode (without --input): talk and listen through the sound card")
    mic.add_argument("--list-devices", action="store_true", help="list the sound devices and exit")
    mic.add_argument(
        "--input-device", help="microphone: a number or part of a name from --list-devices (default: the system's)"
    )
    mic.add_argument(
        "--output-device", help="speaker: a number or part of a name from --list-devices (default: the system's)"
    )
    echo = mic.add_mutually_exclusive_group()
    echo.add_argument(
        "--echo",
        choices=[m.value for m in EchoMode],
        help="echo handling without headphones: aec (cancel the "
        "speaker's echo; you can interrupt), half-duplex (mic muted while the reply plays), off (headphones). "
        "Default: aec when its library is installed, else half-duplex",
    )
    echo.add_argument(
        "--half-duplex",
        dest="echo",
        action="store_const",
        const=EchoMode.HALF_DUPLEX.value,
        help="same as --echo half-duplex",
    )
    mic.add_argument(
        "--prebuffer-ms", type=float, default=60.0, help="reply audio buffered before playback starts (default 60)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list_devices or args.input is None:
        sys.exit(run_microphone(args))
    try:
        samples, rate = sf.read(str(args.input), dtype="int16", always_2d=True)
    except (OSError, RuntimeError) as exc:
        sys.exit(f"s2s-client: cannot read {args.input}: {exc}")
    pcm = samples[:, 0].astype("<i2").tobytes()
    endpoint = resolve(args.url, args.token)
    try:
        result = asyncio.run(
            talk(endpoint.url, endpoint.token, pcm, rate, realtime=args.realtime, timeout_s=args.timeout)
        )
    except ConnectError as err:
        sys.exit(f"s2s-client: {err}")
    except asyncio.TimeoutError:
        sys.exit(f"s2s-client: no reply within {args.timeout:.0f} s")
    for error in result.errors:
        print(f"error: {error.get('code')}: {error.get('message')}", file=sys.stderr)
    print(f"user: {result.user_text}")
    print(f"assistant: {result.reply_text}")
    if result.voice_to_voice_ms is not None:
        print(f"latency: {result.voice_to_voice_ms:.0f} ms from your last word to the first reply audio")
    if args.output and result.reply_audio:
        sf.write(str(args.output), np.frombuffer(bytes(result.reply_audio), dtype="<i2"), result.output_rate)
        print(f"reply audio: {args.output} ({len(result.reply_audio) / 2 / result.output_rate:.1f} s)")
    if result.status != "completed":
        sys.exit(1 if result.errors or result.user_text else 0)


def run_microphone(args: argparse.Namespace) -> int:
    """The live conversation (or --list-devices). Problems the user must fix get one line and a non-zero exit."""
    from client.audio_io import (
        AudioDeviceError,
        SoundDeviceIO,
        choose_devices,
        describe_devices,
    )
    from client.mic_client import MicClient, MicOptions
    from client.view import TerminalView

    try:
        if args.list_devices:
            print(describe_devices())
            return 0
        mic, speaker = choose_devices(args.input_device, args.output_device)
    except AudioDeviceError as err:
        print(f"s2s-client: {err}", file=sys.stderr)
        return 2
    echo = EchoMode(args.echo) if args.echo else (EchoMode.AEC if aec_available() else EchoMode.HALF_DUPLEX)
    endpoint = resolve(args.url, args.token)
    view = TerminalView()
    view.notice(
        f"microphone: {mic.name} ({mic.rate} Hz), speaker: {speaker.name} ({speaker.rate} Hz), echo: {echo.value}; Ctrl-C to quit"
    )
    try:
        client = MicClient(
            endpoint.url,
            endpoint.token,
            SoundDeviceIO(mic, speaker),
            view,
            MicOptions(echo=echo, prebuffer_ms=args.prebuffer_ms),
        )
    except EchoUnavailable as err:  # --echo aec asked for, its library missing
        view.close()
        print(f"s2s-client: {err}; or choose --half-duplex", file=sys.stderr)
        return 2

    async def converse() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, client.stop.set)
        await client.run()

    try:
        asyncio.run(converse())
    except (ConnectError, AudioDeviceError) as err:
        view.close()
        print(f"s2s-client: {err}", file=sys.stderr)
        return 1
    view.close(f"bye ({len(client.conversation.messages)} messages, {client.reconnects} reconnects)")
    return 0


if __name__ == "__main__":
    main()
