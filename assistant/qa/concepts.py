"""Music concepts from the project's own glossary (assistant/glossary.yml).

The glossary is written for this project and names its sources; answers quote
the entry and its sources, so a definition is never made up on the spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from catalog.names import fold
from musicbert.errors import ConfigError

GLOSSARY_PATH = Path(__file__).resolve().parent.parent / "glossary.yml"


@dataclass(frozen=True)
class Concept:
    term: str
    aliases: tuple[str, ...]
    definition: str
    sources: tuple[str, ...]


class Glossary:
    def __init__(self, concepts: list[Concept]) -> None:
        self.concepts = concepts
        self._by_name: dict[str, Concept] = {}
        for c in concepts:
            for name in (c.term, *c.aliases):
                self._by_name.setdefault(fold(name), c)

    @classmethod
    def load(cls, path: Path | None = None) -> Glossary:
        path = path or GLOSSARY_PATH
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the glossary {path}: {exc}") from exc
        if not isinstance(raw, list):
            raise ConfigError(f"the glossary {path} must be a list of entries")
        concepts = []
        for i, e in enumerate(raw):
            if not isinstance(e, dict) or not e.get("term") or not e.get("definition"):
                raise ConfigError(f"glossary entry {i} in {path} needs a term and a definition")
            concepts.append(
                Concept(
                    term=str(e["term"]),
                    aliases=tuple(str(a) for a in e.get("aliases") or ()),
                    definition=" ".join(str(e["definition"]).split()),
                    sources=tuple(str(s) for s in e.get("sources") or ()),
                )
            )
        return cls(concepts)

    def lookup(self, name: str) -> Concept | None:
        """The entry for a term or alias, tolerating typos and plurals."""
        key = fold(name)
        if not key:
            return None
        for candidate in (key, key.removeprefix("a "), key.removeprefix("an "), key.rstrip("s")):
            if candidate in self._by_name:
                return self._by_name[candidate]
        match = process.extractOne(key, list(self._by_name), scorer=fuzz.ratio, score_cutoff=85)
        return self._by_name[match[0]] if match else None

    def spot(self, text: str) -> Concept | None:
        """The longest glossary term or alias that appears as whole words in ``text``."""
        padded = f" {fold(text)} "
        best: tuple[int, Concept] | None = None
        for name, concept in self._by_name.items():
            if f" {name} " in padded and (best is None or len(name) > best[0]):
                best = (len(name), concept)
        return best[1] if best else None

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        found = process.extract(
            fold(name), list(self._by_name), scorer=fuzz.WRatio, limit=limit * 3
        )
        out: list[str] = []
        for cand, score, _ in found:
            term = self._by_name[cand].term
            if score >= 60 and term not in out:
                out.append(term)
        return out[:limit]


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    return Glossary.load()
