"""Reading the Rasa 3.x project files the in-process engine shares with Rasa.

``data/nlu.yml`` is the single source of training data: intents with examples in
Rasa's inline annotation syntax (``[Knolls](track)``, ``[bpm]{"entity":
"attribute", "value": "tempo"}``), synonyms, lookup tables and regexes.
``domain.yml`` gives the intents, entities and response texts. Parsing them here,
rather than via Rasa, keeps the default assistant free of a Rasa install.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.turn import Entity
from musicbert.errors import MusicBertError

PROJECT_DIR = Path(__file__).resolve().parent.parent / "rasa_project"
NLU_FILE = PROJECT_DIR / "data" / "nlu.yml"
DOMAIN_FILE = PROJECT_DIR / "domain.yml"

# [text](entity) | [text](entity:value) | [text]{"entity": ..., "value": ...}
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<paren>[^)]+)\)|(?P<json>\{[^}]*\}))")


class NLUDataError(MusicBertError):
    """The Rasa project files cannot be read (bad YAML or annotation)."""


@dataclass
class Example:
    """One training utterance with its intent and entity spans in the plain text."""

    text: str
    intent: str
    entities: list[Entity] = field(default_factory=list)


@dataclass
class NLUData:
    """Everything nlu.yml says: examples, synonyms (surface -> value), lookups, regexes."""

    examples: list[Example]
    synonyms: dict[str, str] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    sha256: str = ""
    declared_synonyms: dict[str, str] = field(default_factory=dict)  # synonym: blocks only

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    def subset(self, examples: list[Example]) -> NLUData:
        """The same file restricted to ``examples`` (cross-validation folds): synonyms
        learnt from annotations come only from those examples."""
        synonyms = _annotation_synonyms(examples)
        synonyms.update(self.declared_synonyms)
        digest = hashlib.sha256(
            "\n".join(annotate(e) + "|" + e.intent for e in examples).encode()
        ).hexdigest()
        return NLUData(
            list(examples),
            synonyms,
            {k: list(v) for k, v in self.lookups.items()},
            {k: list(v) for k, v in self.regexes.items()},
            digest,
            dict(self.declared_synonyms),
        )

    def by_intent(self) -> dict[str, list[Example]]:
        out: dict[str, list[Example]] = {}
        for ex in self.examples:
            out.setdefault(ex.intent, []).append(ex)
        return out


@dataclass
class Domain:
    intents: list[str]
    entities: list[str]
    slots: dict[str, dict]
    responses: dict[str, list[str]]
    actions: list[str]

    def response(self, name: str) -> str:
        """The first text of a response (the in-process engine answers with it)."""
        texts = self.responses.get(name)
        if not texts:
            raise NLUDataError(f"domain.yml has no response {name!r}")
        return texts[0]


def parse_example(line: str, intent: str = "") -> Example:
    """Turn one annotated example into plain text plus entity offsets."""
    plain: list[str] = []
    entities: list[Entity] = []
    pos = 0
    length = 0
    for match in _ANNOTATION.finditer(line):
        before = line[pos : match.start()]
        plain.append(before)
        length += len(before)
        surface = match.group("text")
        if match.group("json"):
            try:
                spec = json.loads(match.group("json"))
            except json.JSONDecodeError as exc:
                raise NLUDataError(f"bad entity JSON in example {line!r}: {exc}") from exc
            if not isinstance(spec, dict) or "entity" not in spec:
                raise NLUDataError(f"entity JSON without 'entity' in example {line!r}")
            name = str(spec["entity"])
            value = str(spec.get("value", surface))
        else:
            name, _, value = match.group("paren").partition(":")
            value = value or surface
        entities.append(Entity(name.strip(), value, length, length + len(surface), 1.0, "nlu.yml"))
        plain.append(surface)
        length += len(surface)
        pos = match.end()
    plain.append(line[pos:])
    return Example("".join(plain), intent, entities)


def annotate(example: Example) -> str:
    """Write an example back in Rasa's inline syntax (used to write Rasa fold files)."""
    out, pos = [], 0
    for ent in sorted(example.entities, key=lambda e: e.start):
        surface = example.text[ent.start : ent.end]
        out.append(example.text[pos : ent.start])
        if ent.value == surface:
            out.append(f"[{surface}]({ent.entity})")
        else:
            spec = json.dumps({"entity": ent.entity, "value": ent.value})
            out.append(f"[{surface}]{spec}")
        pos = ent.end
    out.append(example.text[pos:])
    return "".join(out)


def _items(block: str) -> list[str]:
    items = []
    for raw in (block or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise NLUDataError(f"example lines must start with '- ': {raw!r}")
        items.append(line[2:].strip())
    return items


def load_nlu(path: Path | str = NLU_FILE) -> NLUData:
    """Read nlu.yml; raises NLUDataError naming what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = yaml.safe_load(raw)
    except OSError as exc:
        raise NLUDataError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise NLUDataError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise NLUDataError(f"{path} has no 'nlu:' list")
    data = NLUData(examples=[], sha256=hashlib.sha256(raw).hexdigest())
    for block in doc["nlu"]:
        if not isinstance(block, dict):
            raise NLUDataError(f"{path}: every nlu item must be a mapping, got {block!r}")
        if "intent" in block:
            for line in _items(block.get("examples", "")):
                ex = parse_example(line, str(block["intent"]))
                data.examples.append(ex)
        elif "synonym" in block:
            for line in _items(block.get("examples", "")):
                data.declared_synonyms[line.lower()] = str(block["synonym"])
        elif "lookup" in block:
            data.lookups.setdefault(str(block["lookup"]), []).extend(
                _items(block.get("examples", ""))
            )
        elif "regex" in block:
            data.regexes.setdefault(str(block["regex"]), []).extend(
                _items(block.get("examples", ""))
            )
    if not data.examples:
        raise NLUDataError(f"{path} has no intent examples")
    data.synonyms = _annotation_synonyms(data.examples)
    data.synonyms.update(data.declared_synonyms)
    return data


def _annotation_synonyms(examples: list[Example]) -> dict[str, str]:
    """Rasa maps an annotated surface to its given value: [bpm]{..."value": "tempo"}."""
    out: dict[str, str] = {}
    for ex in examples:
        for ent in ex.entities:
            surface = ex.text[ent.start : ent.end]
            if ent.value != surface:
                out.setdefault(surface.lower(), ent.value)
    return out


def load_domain(path: Path | str = DOMAIN_FILE) -> Domain:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NLUDataError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise NLUDataError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise NLUDataError(f"{path} is not a Rasa domain")
    responses = {
        name: [str(v["text"]) for v in variants if isinstance(v, dict) and "text" in v]
        for name, variants in (doc.get("responses") or {}).items()
    }
    return Domain(
        intents=[str(i) if not isinstance(i, dict) else next(iter(i)) for i in doc["intents"]],
        entities=[str(e) if not isinstance(e, dict) else next(iter(e)) for e in doc["entities"]],
        slots=dict(doc.get("slots") or {}),
        responses=responses,
        actions=[str(a) for a in doc.get("actions") or []],
    )
