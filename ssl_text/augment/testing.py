"""Tiny random Marian translation models for tests and benchmarks (no Hub access).

``build_tiny_marian_pair(folder)`` trains two small SentencePiece models, writes a joint
``vocab.json`` and saves a forward (en->xx) and a backward (xx->en) ``MarianMTModel`` with
``d_model=32`` and two layers each. The models are random: ``generate()`` runs and emits
random pieces. Needs the ``sentencepiece`` package.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

EN = [
    "The cat sat on the mat.", "Stocks rose sharply on Monday after the report.",
    "The team won the championship in the final minute.", "Scientists found water on a distant planet.",
    "The government announced new taxes for large companies.", "Oil prices fell for the third day.",
    "A new phone was released with a faster chip.", "The president met foreign leaders in Paris.",
    "Rain washed out the second day of the cricket test.", "Apple released a security update yesterday.",
]
XX = [
    "Die Katze sass auf der Matte.", "Die Aktien stiegen am Montag nach dem Bericht stark.",
    "Die Mannschaft gewann die Meisterschaft in der letzten Minute.",
    "Forscher fanden Wasser auf einem fernen Planeten.", "Die Regierung kuendigte neue Steuern an.",
    "Die Oelpreise fielen den dritten Tag.", "Ein neues Telefon mit schnellerem Chip erschien.",
    "Der Praesident traf auslaendische Politiker in Paris.", "Regen verhinderte den zweiten Testtag.",
    "Apple hat gestern ein Sicherheitsupdate veroeffentlicht.",
]


def _train_spm(sentences: list[str], path: Path, vocab_size: int) -> list[str]:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buf, vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    path.write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def build_tiny_marian_pair(folder: str | Path, seed: int = 0, init_std: float = 0.02) -> tuple[str, str]:
    """Save a random en->xx and xx->en Marian model under ``folder``; returns both paths.

    With the default ``init_std`` the output barely depends on the input (good for sampling
    diverse text); ``init_std=1.0`` gives input-dependent greedy outputs."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder = Path(folder)
    spm_dir = folder / "spm"
    spm_dir.mkdir(parents=True, exist_ok=True)
    en_pieces = _train_spm(EN, spm_dir / "en.spm", 120)
    xx_pieces = _train_spm(XX, spm_dir / "xx.spm", 120)
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in en_pieces + xx_pieces:
        if piece not in vocab and piece not in ("<s>", "<pad>"):
            vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    (spm_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")

    paths = []
    for name, src, tgt in (("forward", "en.spm", "xx.spm"), ("backward", "xx.spm", "en.spm")):
        tok = MarianTokenizer(source_spm=str(spm_dir / src), target_spm=str(spm_dir / tgt),
                              vocab=str(spm_dir / "vocab.json"))
        config = MarianConfig(
            vocab_size=len(vocab), d_model=32, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
            max_position_embeddings=512, pad_token_id=vocab["<pad>"], eos_token_id=0,
            decoder_start_token_id=vocab["<pad>"], forced_eos_token_id=0, init_std=init_std,
        )
        torch.manual_seed(seed + len(paths))
        model = MarianMTModel(config).eval()
        out = folder / name
        tok.save_pretrained(out)
        model.save_pretrained(out)
        paths.append(str(out))
    return paths[0], paths[1]
