"""Tiny real models saved to disk, so tests exercise ``from_pretrained`` without a network.

The models are real transformers (BERT architecture, random weights) with a real
WordPiece tokenizer over a small vocabulary; everything loads by path exactly as a hub
model loads by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
DEFAULT_WORDS = tuple(f"w{i}" for i in range(60)) + tuple(
    "the a of and to in is was hello world der die das und le la et el y . , ! ?".split()
)


def save_tiny_bert(
    path: str | Path,
    *,
    words: Sequence[str] = DEFAULT_WORDS,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 2,
    intermediate: int = 64,
    max_positions: int = 128,
    seed: int = 0,
    vocab_file: str | Path | None = None,
    mlm_head: bool = True,
    safetensors: bool = True,
) -> Path:
    """Save a randomly initialised BertForMaskedLM and its tokenizer to ``path``; return ``path``.

    ``vocab_file`` uses an existing WordPiece vocabulary (e.g. the multilingual BERT one
    in ``../shared/data/mbert-vocab``) instead of ``words``. ``mlm_head=False`` saves the
    bare encoder with its pooler (``BertModel``), as sentence-transformers checkpoints
    are: no masked-LM head. ``safetensors=False`` writes a pickled ``pytorch_model.bin``.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    vocab_path = target / "vocab.txt"
    if vocab_file is not None:
        vocab_path.write_text(Path(vocab_file).read_text(encoding="utf-8"), encoding="utf-8")
    else:
        vocab_path.write_text("\n".join([*SPECIAL_TOKENS, *words]) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as `vocab` (a file path or a dict), not `vocab_file`.
    tokenizer = BertTokenizer(vocab=str(vocab_path), do_lower_case=False)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
    )
    model = BertForMaskedLM(config) if mlm_head else BertModel(config)
    model.save_pretrained(target)
    if not safetensors:  # transformers 5 only writes safetensors; older checkpoints are pickles
        torch.save(model.state_dict(), target / "pytorch_model.bin")
        (target / "model.safetensors").unlink()
    tokenizer.save_pretrained(target)
    return target
