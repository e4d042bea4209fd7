"""Builds a tiny, randomly initialised Parler-TTS model and a tokenizer that exist offline (no package ships Parler weights).

Run it with the parler virtualenv's Python: ``.venv-parler/bin/python -m tests.parler_tiny DIR``. The result loads with
``ParlerTTSForConditionalGeneration.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)``, exactly like the
hub's ``parler-tts/parler-tts-mini-v1``: the same architecture (T5 text encoder, 9-codebook decoder, 44.1 kHz DAC codec),
only small and untrained. It proves the code path, not the voice.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Words the test and the service's warm-up speak, plus the default voice description, so the tokenizer has real pieces.
CORPUS = [
    "Hello there.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A female speaker delivers a slightly expressive and animated speech with a moderate speed and pitch.",
    "The recording is of very high quality, with the speaker's voice sounding clear and very close up.",
    "What is the capital of France? The capital of France is Paris.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,?!'-",
]

DECODER_VOCAB = 1025  # 1024 DAC codes + the eos/pad id 1024; bos (1025) gets the decoder's extra embedding row
NUM_CODEBOOKS = 9  # as parler-tts-mini-v1: the 44.1 kHz DAC at 8 kbps


def build_tokenizer(out: Path):
    """A T5-style tokenizer (Unigram over Metaspace pieces, ``</s>`` appended) trained on CORPUS, saved as T5TokenizerFast."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import T5TokenizerFast  # type: ignore[attr-defined]  # .venv-parler has transformers 4.46

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tokenizer.train_from_iterator(CORPUS, trainer)
    eos = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    fast = T5TokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )
    fast.save_pretrained(out)
    return fast


def build(out: Path) -> Path:
    import torch
    from parler_tts import ParlerTTSConfig, ParlerTTSForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out)
    vocab = len(tokenizer)
    config = ParlerTTSConfig(
        vocab_size=vocab,  # prompt (transcript) token embeddings
        text_encoder={
            "model_type": "t5",
            "vocab_size": vocab,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 1,
            "num_heads": 4,
        },
        audio_encoder={
            "model_type": "dac_on_the_hub",
            "num_codebooks": NUM_CODEBOOKS,
        },  # the codec's shape is fixed by DAC
        decoder={
            "vocab_size": DECODER_VOCAB,
            "num_codebooks": NUM_CODEBOOKS,
            "hidden_size": 64,
            "ffn_dim": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "pad_token_id": 1024,
            "eos_token_id": 1024,
            "bos_token_id": 1025,
            "max_position_embeddings": 4096,
        },
        pad_token_id=1024,
        decoder_start_token_id=1025,
    )
    torch.manual_seed(0)
    model = ParlerTTSForConditionalGeneration(config).eval()
    model.generation_config.decoder_start_token_id = 1025
    model.generation_config.pad_token_id = 1024
    model.generation_config.eos_token_id = 1024
    model.generation_config.bos_token_id = 1025
    model.generation_config.do_sample = True
    model.generation_config.max_length = 2580  # parler-tts-mini-v1's: 30 s at 86 frames a second
    model.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.parler_tiny OUT_DIR")
    print(build(Path(sys.argv[1])))
