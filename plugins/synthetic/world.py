"""A synthetic multilingual world: one latent generator, several languages that render it.

After the synthetic-language studies of multilingual BERT (K et al. 2020,
"Cross-Lingual Ability of Multilingual BERT: An Empirical Study"; Dufter & Schütze
2020, "Identifying Elements Essential for BERT's Multilinguality"), the world is a
small latent grammar whose sentences are *rendered* into languages that share
nothing on the surface but a few anchors:

* **concepts** — determiners, adpositions, adjectives, generic nouns and verbs, and
  per-topic nouns and verbs. A document has a topic (the benchmark label); the verb,
  subject and object of each of its clauses come from that topic with probability
  ``topic_rate`` (else from the generic ones), the noun of an adpositional phrase
  ("… in the house") is always generic.
* **languages** ``l0`` (the source) … ``l{n-1}``: each gives every concept its own
  invented word (a bijective renaming, so vocabularies are disjoint) and orders a
  clause its own way (SVO, noun–adjective, VSO, SOV with postpositions, or fully
  reversed; see :data:`WORD_ORDERS`).
* **anchors** shared by every language: numbers, personal names and the full stop —
  the only surface forms two languages have in common.
* **code-switching** (corpus only): in a share of the documents a share of the words
  are rendered in a second language. A feasibility prototype found that anchors alone
  did not make a small model align languages and that this mixing did (see
  docs/synthetic.md).

Everything is a pure function of the :class:`WorldConfig` and named random streams
(``random.Random("<seed>/<purpose>")``, whose string seeding is hashed with SHA-512
and so is stable across processes); no global random state is touched.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Literal

SOURCE = "l0"
FULL_STOP = "."
TOPIC_NAMES = ("sport", "food", "music", "weather", "health", "travel", "trade", "school")


@dataclass(frozen=True)
class WordOrder:
    """How one language linearises the latent clause."""

    clause: Literal["SVO", "VSO", "SOV"] = "SVO"
    adjective_after_noun: bool = False
    postpositions: bool = False
    reversed: bool = False
    """Render as ``l0``-like SVO, then reverse every word (the full stop stays last)."""

    def describe(self) -> str:
        """E.g. 'SOV, adjective–noun, postpositions'."""
        if self.reversed:
            return "fully reversed"
        parts: list[str] = [self.clause]
        parts.append("noun–adjective" if self.adjective_after_noun else "adjective–noun")
        parts.append("postpositions" if self.postpositions else "prepositions")
        return ", ".join(parts)


WORD_ORDERS: tuple[WordOrder, ...] = (
    WordOrder(),                                              # l0: the source
    WordOrder(),                                              # same order, other words
    WordOrder(adjective_after_noun=True),                     # noun–adjective
    WordOrder(clause="VSO"),                                  # verb first
    WordOrder(clause="SOV", postpositions=True),              # verb last, postpositions
    WordOrder(reversed=True),                                 # every word reversed
)
"""Word order of language ``l{i}`` is ``WORD_ORDERS[i % 6]``."""


def _meta(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class WorldConfig:
    """What defines the lexicon and the generator (shared by the four synthetic plugins)."""

    world_seed: int = field(default=0, metadata=_meta("seed of the world: lexicon, texts and splits"))
    languages: int = field(default=6, metadata=_meta("number of languages l0..l{n-1}; l0 is the source"))
    topics: int = field(default=6, metadata=_meta("number of topics (benchmark labels)"))
    nouns_per_topic: int = field(default=8, metadata=_meta("topic-specific nouns per topic"))
    verbs_per_topic: int = field(default=3, metadata=_meta("topic-specific verbs per topic"))
    generic_nouns: int = field(default=12, metadata=_meta("nouns of no topic (adpositional phrases)"))
    generic_verbs: int = field(default=6, metadata=_meta("verbs of no topic (used when topic_rate < 1)"))
    adjectives: int = field(default=10, metadata=_meta("adjectives (topic-neutral)"))
    topic_rate: float = field(
        default=1.0, metadata=_meta("probability that a verb, subject or object is from the document's topic")
    )
    max_clauses: int = field(default=4, metadata=_meta("a document has 1..max_clauses clauses"))

    def __post_init__(self) -> None:
        if not 2 <= self.languages <= 26:
            raise ValueError("languages must be between 2 and 26")
        if not 2 <= self.topics <= 64:
            raise ValueError("topics must be between 2 and 64")
        sizes = ("nouns_per_topic", "verbs_per_topic", "generic_nouns", "generic_verbs", "adjectives")
        small = [name for name in sizes if getattr(self, name) < 1]
        if small:
            raise ValueError(f"{', '.join(small)} must be at least 1")
        if not 1 <= self.max_clauses <= 8:
            raise ValueError("max_clauses must be between 1 and 8")
        if not 0.0 <= self.topic_rate <= 1.0:
            raise ValueError("topic_rate must be within [0, 1]")


def world_config(params: Any) -> WorldConfig:
    """The WorldConfig part of any plugin's Params (which extend it)."""
    return WorldConfig(**{f.name: getattr(params, f.name) for f in fields(WorldConfig)})


@dataclass(frozen=True)
class Concept:
    """One meaning; ``topic`` is None for topic-neutral concepts."""

    index: int
    category: Literal["det", "adp", "adj", "noun", "verb"]
    topic: int | None = None


@dataclass(frozen=True)
class NounPhrase:
    """A latent noun phrase: a name (anchor), or determiner/number + optional adjective + noun."""

    name: str | None = None
    det: int | None = None
    number: str | None = None
    adj: int | None = None
    noun: int | None = None


@dataclass(frozen=True)
class Clause:
    """A latent clause: subject, verb, object and an optional adpositional phrase."""

    subject: NounPhrase
    verb: int
    obj: NounPhrase
    adposition: int | None = None
    oblique: NounPhrase | None = None


Document = tuple[int, tuple[Clause, ...]]
"""A topic and its clauses."""

NAMES = ("Ana", "Bo", "Carla", "Dimi", "Emil", "Fatou", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena")
NUMBERS = tuple(str(n) for n in range(2, 10))
DETERMINERS = 3
ADPOSITIONS = 4
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiouy"


class World:
    """The lexicon and generator of one WorldConfig (cheap to build; texts are generated lazily)."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()

    # ----------------------------------------------------------- inventory
    def rng(self, purpose: str) -> random.Random:
        """A private random stream for ``purpose`` (stable across processes and Python runs)."""
        return random.Random(f"kdreg-synthetic/{self.config.world_seed}/{purpose}")

    @cached_property
    def languages(self) -> tuple[str, ...]:
        return tuple(f"l{i}" for i in range(self.config.languages))

    def word_order(self, language: str) -> WordOrder:
        return WORD_ORDERS[self.languages.index(language) % len(WORD_ORDERS)]

    @cached_property
    def topic_names(self) -> tuple[str, ...]:
        n = self.config.topics
        return tuple(TOPIC_NAMES[i] if i < len(TOPIC_NAMES) else f"topic{i}" for i in range(n))

    @cached_property
    def concepts(self) -> tuple[Concept, ...]:
        c = self.config
        counts = {"det": DETERMINERS, "adp": ADPOSITIONS, "adj": c.adjectives, "noun": c.generic_nouns,
                  "verb": c.generic_verbs}
        spec: list[tuple[str, int | None]] = [(cat, None) for cat, n in counts.items() for _ in range(n)]
        for topic in range(c.topics):
            spec += [("noun", topic)] * c.nouns_per_topic + [("verb", topic)] * c.verbs_per_topic
        return tuple(Concept(i, cat, topic) for i, (cat, topic) in enumerate(spec))  # type: ignore[arg-type]

    def _of(self, category: str, topic: int | None) -> tuple[int, ...]:
        return tuple(x.index for x in self.concepts if x.category == category and x.topic == topic)

    @cached_property
    def _pools(self) -> dict[tuple[str, int | None], tuple[int, ...]]:
        keys = {(x.category, x.topic) for x in self.concepts}
        return {key: self._of(*key) for key in keys}

    @cached_property
    def lexicon(self) -> dict[str, tuple[str, ...]]:
        """language → word of each concept; every word is unique across all languages."""
        taken: set[str] = {n.lower() for n in NAMES}
        lexicon: dict[str, tuple[str, ...]] = {}
        for language in self.languages:
            rng = self.rng(f"lexicon/{language}")
            consonants = "".join(sorted(rng.sample(_CONSONANTS, 9)))  # each language its own sounds
            vowels = "".join(sorted(rng.sample(_VOWELS, 4)))
            words: list[str] = []
            for concept in self.concepts:
                syllables = 1 if concept.category in ("det", "adp") else rng.choice((2, 2, 3))
                while True:
                    word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
                    if concept.category in ("det", "adp") or rng.random() < 0.3:
                        word += rng.choice(consonants)
                    if word not in taken:
                        break
                    syllables += rng.random() < 0.2  # crowded short forms: grow longer
                taken.add(word)
                words.append(word)
            lexicon[language] = tuple(words)
        return lexicon

    @cached_property
    def anchors(self) -> tuple[str, ...]:
        """Surface forms shared by every language."""
        return (FULL_STOP, *NUMBERS, *NAMES)

    @cached_property
    def vocabulary(self) -> tuple[str, ...]:
        """Every word of the world, in a fixed order: anchors, then each language's words."""
        return (*self.anchors, *(w for language in self.languages for w in self.lexicon[language]))

    # ----------------------------------------------------------- generator
    def _pick(self, rng: random.Random, category: str, topic: int | None) -> int:
        topical = self._pools.get((category, topic), ()) if topic is not None else ()
        if topical and rng.random() < self.config.topic_rate:
            return rng.choice(topical)
        return rng.choice(self._pools[(category, None)])

    def _noun_phrase(self, rng: random.Random, topic: int | None, allow_name: bool) -> NounPhrase:
        if allow_name and rng.random() < 0.25:
            return NounPhrase(name=rng.choice(NAMES))
        number = rng.choice(NUMBERS) if rng.random() < 0.15 else None
        det = None if number else rng.choice(self._pools[("det", None)])
        adj = rng.choice(self._pools[("adj", None)]) if rng.random() < 0.4 else None
        return NounPhrase(det=det, number=number, adj=adj, noun=self._pick(rng, "noun", topic))

    def _clause(self, rng: random.Random, topic: int) -> Clause:
        subject = self._noun_phrase(rng, topic, allow_name=True)
        verb = self._pick(rng, "verb", topic)
        obj = self._noun_phrase(rng, topic, allow_name=True)
        if rng.random() < 0.4:
            adposition = rng.choice(self._pools[("adp", None)])
            return Clause(subject, verb, obj, adposition, self._noun_phrase(rng, None, allow_name=False))
        return Clause(subject, verb, obj)

    def document(self, rng: random.Random, topic: int | None = None) -> Document:
        """A latent document: a topic (random unless given) and 1..max_clauses clauses."""
        topic = rng.randrange(self.config.topics) if topic is None else topic
        return topic, tuple(self._clause(rng, topic) for _ in range(rng.randint(1, self.config.max_clauses)))

    # ----------------------------------------------------------- rendering
    def render(self, document: Document, language: str,
               switch: tuple[str, float, random.Random] | None = None) -> str:
        """The surface text of a latent document in ``language``.

        ``switch = (other_language, rate, rng)`` renders each concept word in
        ``other_language`` with probability ``rate`` (code-switching); the word order
        stays that of ``language``.
        """
        order = self.word_order(language)
        own = self.lexicon[language]
        if switch is None:
            def word(concept: int) -> str:
                return own[concept]
        else:
            other, rate, rng = switch
            theirs = self.lexicon[other]

            def word(concept: int) -> str:
                return theirs[concept] if rng.random() < rate else own[concept]

        sentences = []
        for clause in document[1]:
            tokens = _linearise(clause, order, word)
            sentences.append(" ".join([*tokens, FULL_STOP]))
        return " ".join(sentences)

    # ------------------------------------------------------------- streams
    def corpus_documents(self, language: str, count: int, switch_documents: float,
                         switch_words: float) -> Iterator[str]:
        """``count`` unlabeled documents of ``language`` (one line each), some code-switched."""
        rng = self.rng(f"corpus/{language}")
        others = [x for x in self.languages if x != language]
        for _ in range(count):
            document = self.document(rng)
            if rng.random() < switch_documents:
                yield self.render(document, language, (rng.choice(others), switch_words, rng))
            else:
                yield self.render(document, language)

    def labelled_documents(self, split: str, count: int) -> list[Document]:
        """Latent labelled documents of a split, topics balanced (the same for every language)."""
        rng = self.rng(f"benchmark/{split}")
        topics = [i % self.config.topics for i in range(count)]
        rng.shuffle(topics)
        return [self.document(rng, topic=t) for t in topics]


def _linearise(clause: Clause, order: WordOrder, word: Any) -> list[str]:
    def np(phrase: NounPhrase) -> list[str]:
        if phrase.name is not None:
            return [phrase.name]
        head = [phrase.number] if phrase.number is not None else [word(phrase.det)]
        noun = word(phrase.noun)
        if phrase.adj is None:
            return [*head, noun]
        adj = word(phrase.adj)
        return [*head, noun, adj] if order.adjective_after_noun else [*head, adj, noun]

    subject, verb, obj = np(clause.subject), [word(clause.verb)], np(clause.obj)
    oblique: list[str] = []
    if clause.adposition is not None and clause.oblique is not None:
        adposition = [word(clause.adposition)]
        phrase = np(clause.oblique)
        oblique = phrase + adposition if order.postpositions else adposition + phrase
    if order.reversed:
        return list(reversed(subject + verb + obj + oblique))
    if order.clause == "VSO":
        return verb + subject + obj + oblique
    if order.clause == "SOV":
        return subject + obj + oblique + verb
    return subject + verb + obj + oblique

