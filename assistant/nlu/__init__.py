"""Natural-language understanding: utterance -> intent + entities (``Parse``).

``NLU`` runs in process: MiniLM sentence embeddings + logistic regression for
the intent, a catalog gazetteer + patterns for the entities, both trained from
``assistant/rasa_project/data/nlu.yml``; a bare description the classifier took
for a question is a search (``assistant.nlu.description``). ``RasaNLU`` asks a
running Rasa server instead (``--nlu rasa --rasa-url URL``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from assistant.nlu import file_requests, history_requests, journeys, similarity
from assistant.nlu.description import QUESTION_INTENTS, SEARCH_INTENT, reroute
from assistant.nlu.entities import NO_PLAYLIST, PLAYLIST_INTENTS, EntityExtractor, is_bare_playlist
from assistant.nlu.gazetteer import Vocabulary, catalog_vocabulary
from assistant.nlu.intent_classifier import IntentModel, TextEncoder, load_or_train, mask
from assistant.nlu.rasa_format import NLU_FILE, NLUData, load_nlu
from assistant.turn import Entity, Parse
from musicbert.errors import ConfigError, MusicBertError

#: Characters of an utterance the NLU reads; nobody asks for music in more.
MAX_CHARS = 1000
DEFAULT_THRESHOLD = 0.2
FALLBACK_INTENT = "out_of_scope"


class NLUServiceError(MusicBertError):
    """The Rasa server for ``--nlu rasa`` cannot be reached or answered badly."""


class NLU:
    """In-process NLU. ``NLU.load(catalog, embedder)`` once, then ``parse(text)`` per turn."""

    def __init__(
        self,
        data: NLUData,
        encoder: TextEncoder | None,
        model: IntentModel | None,
        extractor: EntityExtractor,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.data = data
        self.encoder = encoder
        self.model = model
        self.extractor = extractor
        self.threshold = threshold
        # Training texts are masked with nlu.yml's names only, so the cached model
        # does not depend on what the catalog holds.
        self._train_extractor = EntityExtractor(Vocabulary.from_nlu(data))

    @classmethod
    def load(
        cls,
        catalog=None,
        embedder=None,
        nlu_path: str | Path = NLU_FILE,
        threshold: float = DEFAULT_THRESHOLD,
        tower=None,
    ) -> NLU:
        """Read nlu.yml, load the text tower (the embedder's, else the packaged MiniLM),
        and train or load the cached intent model."""
        data = load_nlu(nlu_path)
        if tower is None:
            if embedder is not None:
                tower = embedder.text_tower
            else:
                from musicbert.text_tower import TextTower

                tower = TextTower.load()
        encoder = TextEncoder(tower)
        nlu = cls(data, encoder, None, build_extractor(data, catalog), threshold)
        texts = [nlu.training_text(ex.text) for ex in data.examples]
        nlu.model = load_or_train(texts, [ex.intent for ex in data.examples], encoder, data.sha256)
        return nlu

    def training_text(self, text: str) -> str:
        return mask(text, self._train_extractor.extract(text))

    def refresh_names(self, catalog) -> None:
        """Rebuild the gazetteer after the catalog changed (ingest, new playlist)."""
        self.extractor = build_extractor(self.data, catalog)

    def parse(self, text: str) -> Parse:
        return self.parse_many([text])[0]

    def parse_many(self, texts: list[str]) -> list[Parse]:
        """``parse`` for many utterances at once: the text tower encodes them in batches
        and the intent model predicts them in one call (``musicbert nlu --file``)."""
        texts = [(t if isinstance(t, str) else str(t))[:MAX_CHARS] for t in texts]
        live = [i for i, t in enumerate(texts) if t.strip()]
        cands = {i: self.extractor.candidates(texts[i]) for i in live}
        masked = [mask(texts[i], self.extractor.select(texts[i], cands[i], None)) for i in live]
        # a playlist named without the word "playlist" only counts for a playlist intent: a
        # text holding one ("thank you", a playlist "you" made) is also read without it
        unnamed = {
            n: mask(texts[i], self.extractor.select(texts[i], cands[i], NO_PLAYLIST))
            for n, i in enumerate(live)
            if any(is_bare_playlist(c) for c in cands[i])
        }
        unnamed = {n: text for n, text in unnamed.items() if text != masked[n]}
        probs = self.model.predict(self.encoder.embed([*masked, *unnamed.values()])) if live else []
        read_without = dict(zip(unnamed, probs[len(live) :], strict=True))
        probs = [self._surer(row, read_without.get(n)) for n, row in enumerate(probs[: len(live)])]
        out = [Parse(t, FALLBACK_INTENT, 0.0) for t in texts]
        for i, row in zip(live, probs, strict=True):
            out[i] = self._finish(texts[i], cands[i], row)
        return out

    def _surer(self, named, unnamed):
        """The intent probabilities of a text read with a bare playlist name (``named``) or
        without it (``unnamed``): the first only if it is the surer reading and its intent
        is one a bare playlist name counts for."""
        if unnamed is None:
            return named
        intent = self.model.labels[int(named.argmax())]
        keep = intent in PLAYLIST_INTENTS and named.max() >= unnamed.max()
        return named if keep else unnamed

    def _finish(self, text: str, cands, probs) -> Parse:
        """Intent, entities and the question-or-request check of one utterance."""
        order = probs.argsort()[::-1]
        ranking = [(self.model.labels[i], round(float(probs[i]), 4)) for i in order[:5]]
        intent, confidence = ranking[0]
        if confidence < self.threshold:
            intent = FALLBACK_INTENT
        entities = self.extractor.select(text, cands, intent)
        if intent in QUESTION_INTENTS:  # a bare description read as a question asks for music
            described = self.extractor.select(text, cands, SEARCH_INTENT)
            probs_by_label = dict(zip(self.model.labels, map(float, probs), strict=True))
            request = reroute(intent, probs_by_label, text, described, cands)
            if request is not None:
                intent, confidence = request
                entities = described
        exported = file_requests.reroute(intent, text, cands)
        if exported is not None:  # "export road trip", "save road trip as xspf"
            intent = exported
            entities = [e for e in self.extractor.select(text, cands, exported)
                        if e.value.lower() not in file_requests.FILE_WORDS]  # fmt: skip
        if history_requests.request_kind(text) is not None:  # "my most played this month"
            intent = history_requests.HISTORY_INTENT
            entities = self.extractor.select(text, cands, "play_music")
        ends = journeys.path_ends(text, self.extractor.select(text, cands, "play_music"))
        if ends is not None:  # "take me from Nebula to Battle Music in 8 songs"
            intent = journeys.PATH_INTENT
            entities = [
                e
                for e in self.extractor.select(text, cands, "play_music")
                if e.entity != "track" or e in ends
            ]
        similar = similarity.reroute(intent, text, entities)
        if similar is not None:  # "play something similar to Nebula"
            intent = similar
            entities = self.extractor.select(text, cands, similar)
        return Parse(text, intent, confidence, entities, ranking)


def make_nlu(
    kind: str = "in-process", rasa_url: str | None = None, catalog=None, embedder=None
) -> NLU:
    """The NLU a command asked for: ``in-process`` (default) or ``rasa`` (needs a URL)."""
    if kind == "rasa":
        if not rasa_url:
            raise ConfigError("--nlu rasa needs --rasa-url URL (e.g. http://127.0.0.1:5005)")
        return RasaNLU(rasa_url)
    if kind not in ("in-process", "local"):
        raise ConfigError(f"unknown NLU {kind!r}: use 'in-process' or 'rasa'")
    return NLU.load(catalog=catalog, embedder=embedder)


def build_extractor(data: NLUData, catalog=None) -> EntityExtractor:
    vocab = Vocabulary.from_nlu(data)
    if catalog is not None:
        for entity, names in catalog_vocabulary(catalog).items():
            vocab.add(entity, names)
    return EntityExtractor(vocab)


class RasaNLU(NLU):
    """The same ``parse`` answered by a Rasa server's ``POST /model/parse``."""

    def __init__(self, url: str, timeout: float = 10.0, threshold: float = 0.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--rasa-url must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.threshold = threshold

    def parse_many(self, texts: list[str]) -> list[Parse]:  # one request per utterance
        return [self.parse(t) for t in texts]

    def refresh_names(self, catalog) -> None:  # the Rasa server has its own lookups
        return None

    def parse(self, text: str) -> Parse:
        text = str(text)[:MAX_CHARS]
        if not text.strip():
            return Parse(text, FALLBACK_INTENT, 0.0)
        body = json.dumps({"text": text}).encode()
        req = urllib.request.Request(
            f"{self.url}/model/parse",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                doc = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise NLUServiceError(f"Rasa at {self.url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NLUServiceError(
                f"cannot reach Rasa at {self.url} ({reason}); start it with "
                "`rasa run --enable-api` or drop --nlu rasa"
            ) from exc
        except json.JSONDecodeError as exc:
            raise NLUServiceError(f"Rasa at {self.url} did not answer JSON") from exc
        return parse_from_rasa(text, doc, self.threshold)


def parse_from_rasa(text: str, doc: dict, threshold: float = 0.0) -> Parse:
    """Convert Rasa's parse JSON (intent, entities, intent_ranking) to a ``Parse``."""
    intent = doc.get("intent") or {}
    name = intent.get("name") or FALLBACK_INTENT
    confidence = float(intent.get("confidence") or 0.0)
    if name == "nlu_fallback" or confidence < threshold:
        name = FALLBACK_INTENT
    entities = [
        Entity(
            str(e.get("entity")),
            str(e.get("value")),
            int(e.get("start", 0)),
            int(e.get("end", 0)),
            float(e.get("confidence_entity", e.get("confidence", 1.0)) or 1.0),
            str(e.get("extractor", "rasa")),
        )
        for e in doc.get("entities") or []
        if e.get("entity") and e.get("value") is not None
    ]
    ranking = [
        (str(r.get("name")), float(r.get("confidence") or 0.0))
        for r in doc.get("intent_ranking") or []
    ]
    return Parse(text, name, confidence, entities, ranking)


__all__ = [
    "NLU",
    "NLUServiceError",
    "RasaNLU",
    "build_extractor",
    "make_nlu",
    "parse_from_rasa",
]
