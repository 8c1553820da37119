"""Intent classification: logistic regression on MiniLM sentence embeddings.

The sentence embeddings come from MusicBERT's own text tower (all-MiniLM-L6-v2),
so the assistant loads one text model. Before embedding, names and tag words
are replaced by placeholders ("play Song Title") so the classifier learns the
shape of a request rather than the names in the examples (a comparative mood keeps
its ending, "happier" -> "calmer", so a change is not read as a new description),
and synonyms by their value ("skip" -> "next"). The fitted model is cached under
``cache_dir("nlu")`` keyed by the hash of nlu.yml and the tower's weights, so
training runs only when the data or the model changes.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.turn import Entity
from musicbert.paths import cache_dir

CACHE_VERSION = 4
PLACEHOLDERS = {
    "track": "Song Title",
    "artist": "Artist Name",
    "album": "Album Name",
    "genre": "jazz",
    "mood": "calm",
    "instrument": "piano",
    "playlist": "Mylist",
}
CANONICAL = ("control", "attribute", "direction")


def mask(text: str, entities: Sequence[Entity]) -> str:
    """Names -> placeholders, synonyms -> their value, so only the request's shape is left."""
    out = text
    for e in sorted(entities, key=lambda e: -e.start):
        if e.entity in PLACEHOLDERS:
            word = PLACEHOLDERS[e.entity]
            if e.entity == "mood" and _comparative(text[e.start : e.end], e.value):
                word += "er"  # "calmer" stays a comparison (refine), "calm" a description
            out = out[: e.start] + word + out[e.end :]
        elif e.entity in CANONICAL:
            out = out[: e.start] + e.value.replace("_", " ") + out[e.end :]
    return out


def _comparative(surface: str, value: str) -> bool:
    """A surface that compares its value: "calmer" for calm, "happier" for happy."""
    surface, value = surface.casefold(), value.casefold()
    return surface != value and surface.endswith("er") and not value.endswith("er")


class TextEncoder:
    """The text tower plus a small memo of recent sentences (chat repeats itself)."""

    def __init__(self, tower, memo_size: int = 512) -> None:
        self.tower = tower
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo_size

    @property
    def identity(self) -> str:
        sha = getattr(self.tower, "sha256", None)
        return str(sha or getattr(self.tower, "model_dir", type(self.tower).__name__))

    def embed(self, texts: list[str]) -> np.ndarray:
        found = {t: self._memo[t] for t in texts if t in self._memo}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # long text is truncated; that is fine here
                vectors = self.tower.embed(missing)
            found.update(zip(missing, vectors, strict=True))
            if len(missing) <= self._memo_size:
                for t in missing:
                    self._memo[t] = found[t]
                while len(self._memo) > self._memo_size:
                    self._memo.popitem(last=False)
        return np.stack([found[t] for t in texts])


@dataclass
class IntentModel:
    labels: list[str]
    classifier: object  # sklearn LogisticRegression

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities (n, len(labels))."""
        return self.classifier.predict_proba(vectors)


def fit(vectors: np.ndarray, intents: Sequence[str], c: float = 10.0) -> IntentModel:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(vectors, list(intents))
    return IntentModel([str(x) for x in clf.classes_], clf)


def cache_key(nlu_sha256: str, encoder: TextEncoder) -> str:
    raw = f"{CACHE_VERSION}|{nlu_sha256}|{encoder.identity}".encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def load_or_train(
    texts: Sequence[str], intents: Sequence[str], encoder: TextEncoder, nlu_sha256: str
) -> IntentModel:
    """The cached model for this nlu.yml and tower, training (and caching) it if needed."""
    path = cache_dir("nlu") / f"intent-{cache_key(nlu_sha256, encoder)}.pkl"
    if path.is_file():
        try:
            with path.open("rb") as fh:
                model = pickle.load(fh)
            if isinstance(model, IntentModel):
                return model
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass  # a broken cache is rebuilt below
    model = fit(encoder.embed(list(texts)), intents)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(model, fh)
    tmp.replace(path)
    return model
