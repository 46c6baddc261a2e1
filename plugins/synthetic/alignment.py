"""Topic alignment: do a model's input embeddings put translations of topic words together?

For every topical noun and verb of a target language, take its nearest source-language
topical word by cosine similarity of *centred* input embeddings and check whether the
two belong to the same topic; the score is the fraction that do (chance: 1/topics).
Each language's embeddings are centred on the mean of that language's whole vocabulary
first, because multilingual encoders keep a per-language offset that would otherwise
dominate the nearest neighbour (Libovický et al. 2020, "On the Language Neutrality of
Pre-trained Multilingual Representations").

It needs no training and no labelled data, and a feasibility prototype found that it
separates distillation conditions more cleanly than zero-shot accuracy (see
docs/synthetic.md), so the synthetic benchmark logs it as an extra metric.
"""

from __future__ import annotations

from typing import Any

from kdreg.errors import DataError
from kdreg_plugins.synthetic.world import World


def topic_alignment(embeddings: Any, tokenizer: Any, world: World) -> dict[str, float]:
    """Topic alignment of every target language against the source (``l0``)."""
    import torch

    unk = tokenizer.unk_token_id

    def centred(language: str) -> Any:
        ids = tokenizer.convert_tokens_to_ids(list(world.lexicon[language]))
        if unk in ids:
            raise DataError(
                f"The model's tokenizer does not know the words of synthetic language {language!r}: "
                "give the synthetic teacher and benchmark the same world parameters."
            )
        vectors = embeddings[torch.tensor(ids)].detach().float()
        return vectors - vectors.mean(dim=0, keepdim=True)

    source, *targets = world.languages
    topical = [c for c in world.concepts if c.topic is not None]
    rows = torch.tensor([c.index for c in topical])
    topics = torch.tensor([c.topic for c in topical])
    anchor = torch.nn.functional.normalize(centred(source)[rows], dim=-1)
    scores: dict[str, float] = {}
    for language in targets:
        vectors = torch.nn.functional.normalize(centred(language)[rows], dim=-1)
        nearest = (vectors @ anchor.T).argmax(dim=-1)
        scores[language] = float((topics[nearest] == topics).float().mean())
    return scores
