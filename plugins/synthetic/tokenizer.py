"""The synthetic world's word-level tokenizer, built in-process and saved like any hub tokenizer.

Every word of the world is one token (the languages are invented, so subwords would
only blur what the study controls: which surface forms languages share). It is a
``tokenizers`` WordLevel model with BERT's special tokens and ``[CLS] … [SEP]``
templates, wrapped as a transformers ``PreTrainedTokenizerFast`` so the pipeline, the
collators and ``AutoTokenizer.from_pretrained`` treat it exactly like a hub tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_tokenizer(words: Sequence[str], model_max_length: int = 128) -> Any:
    """A fast tokenizer whose vocabulary is SPECIAL_TOKENS then ``words`` (ids in that order)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
