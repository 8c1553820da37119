"""In-process NLU with the real MiniLM tower, its training cache, and the Rasa client."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from assistant.nlu import NLU, NLUServiceError, RasaNLU, make_nlu, parse_from_rasa
from assistant.nlu.intent_classifier import cache_key
from musicbert.errors import ConfigError
from musicbert.paths import cache_dir
from tests.dialogue_library import shared_models


@pytest.fixture(scope="module")
def nlu():
    return shared_models()[1]


@pytest.mark.parametrize(
    "text, intent, entities",
    [
        ("play Battle Music", "play_music", [("track", "Battle Music")]),
        ("could you put on something by Maxstack", "play_music", [("artist", "Maxstack")]),
        ("recommend me some calm piano music", "recommend", [("mood", "calm"),
                                                              ("instrument", "piano")]),
        ("what's the bpm of Nebula?", "ask_track_info", [("attribute", "tempo"),
                                                         ("track", "Nebula")]),
        ("skip this one", "playback_control", [("control", "next")]),
        ("make it a bit more upbeat", "refine", [("direction", "more"), ("mood", "upbeat")]),
        ("delete the workout playlist", "playlist_delete", [("playlist", "workout")]),
        ("what is a fugue", "ask_concept", []),
        ("thanks a bunch", "thank", []),
        ("what's the capital of Peru", "out_of_scope", []),
    ],
)  # fmt: skip
def test_parses_unseen_sentences(nlu, text, intent, entities):
    parse = nlu.parse(text)
    assert parse.intent == intent, parse.ranking
    assert [(e.entity, e.value) for e in parse.entities] == entities
    assert 0.0 <= parse.confidence <= 1.0
    assert parse.ranking[0][0] == parse.intent or parse.intent == "out_of_scope"


@pytest.mark.parametrize(
    "text, entities",
    [
        ("epic orchestral battle music", [("mood", "epic"), ("genre", "orchestral")]),
        ("jazz", [("genre", "jazz")]),
        ("calm piano", [("mood", "calm"), ("instrument", "piano")]),
        ("something epic", [("mood", "epic")]),
        ("upbeat electronic with female vocals", [("mood", "upbeat"), ("genre", "electronic"),
                                                  ("instrument", "vocals")]),
        ("dark ambient stuff for reading", [("mood", "dark"), ("genre", "ambient")]),
        ("sad violin", [("mood", "sad"), ("instrument", "violin")]),
    ],
)  # fmt: skip
def test_a_bare_description_asks_for_music(nlu, text, entities):
    parse = nlu.parse(text)
    assert parse.intent in ("search_music", "play_music", "recommend"), parse.ranking
    assert [(e.entity, e.value) for e in parse.entities] == entities


@pytest.mark.parametrize(
    "text, intent",
    [
        ("play Battle Music", "play_music"),
        ("play battle music", "play_music"),
        ("who wrote Battle Music?", "ask_track_info"),
        ("what key is Battle Music in", "ask_track_info"),
    ],
)
def test_the_same_words_still_name_the_track(nlu, text, intent):
    parse = nlu.parse(text)
    assert parse.intent == intent, parse.ranking
    assert parse.first("track") == "Battle Music"


class _Leaning:
    """An intent model that always says one intent, to test what the rule overrides."""

    def __init__(self, labels, intent):
        self.labels, self.intent = labels, intent

    def predict(self, vectors):
        import numpy as np

        probs = np.full((len(vectors), len(self.labels)), 0.01)
        probs[:, self.labels.index(self.intent)] = 1.0
        return probs / probs.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("leaning", ["ask_content", "ask_concept", "describe_track"])
def test_a_description_read_as_a_question_becomes_a_search(nlu, monkeypatch, leaning):
    monkeypatch.setattr(nlu, "model", _Leaning(nlu.model.labels, leaning))
    for text in ("epic orchestral battle music", "calm piano", "some dark electronic stuff",
                 "jazz", "relaxing harp for sleeping", "80s synth"):  # fmt: skip
        parse = nlu.parse(text)
        assert parse.intent == "search_music", text
        assert parse.first("track") is None
        assert parse.ranking[0][0] == leaning  # the ranking still says what the model guessed
    # questions, names, comparisons and unknown words first stay with the classifier
    for text in ("is it calm", "calm piano?", "what is jazz", "explain baroque music",
                 "Nebula", "calm Nebula", "more upbeat", "i love jazz"):  # fmt: skip
        assert nlu.parse(text).intent == leaning, text


def test_a_playlist_named_with_common_words_changes_no_other_request(nlu):
    """A playlist "you" (made in the chat) is a name only where a playlist can be meant:
    "thank you" stays thanks, yet "add this to you" adds to it."""
    from assistant.nlu.entities import EntityExtractor
    from assistant.nlu.gazetteer import Vocabulary

    vocab = Vocabulary.from_nlu(nlu.data)
    vocab.add("playlist", ["you", "evening", "road trip"])
    named = NLU(nlu.data, nlu.encoder, nlu.model, EntityExtractor(vocab))
    for text, intent in [
        ("thank you", "thank"),
        ("what are you able to do", "help"),
        ("good evening to you", "greet"),
    ]:
        parse = named.parse(text)
        assert (parse.intent, parse.entities) == (intent, []), text
    for text, intent, playlist in [
        ("add this to you", "playlist_add", "you"),
        ("delete road trip", "playlist_delete", "road trip"),
    ]:
        parse = named.parse(text)
        assert parse.intent == intent, text
        assert [(e.entity, e.value) for e in parse.entities] == [("playlist", playlist)], text


def test_low_confidence_goes_out_of_scope(nlu, monkeypatch):
    monkeypatch.setattr(nlu, "threshold", 1.01)
    parse = nlu.parse("play Battle Music")
    assert parse.intent == "out_of_scope"
    assert parse.ranking[0][0] == "play_music"  # the ranking still says what it guessed


def test_empty_and_huge_text(nlu):
    assert nlu.parse("   ").intent == "out_of_scope"
    assert nlu.parse("").confidence == 0.0
    long = "play Battle Music " + "la " * 5000
    parse = nlu.parse(long)
    assert len(parse.text) <= 1000
    assert all(e.end <= len(parse.text) for e in parse.entities)


TINY_NLU = """version: "3.1"
nlu:
  - intent: greet
    examples: |
      - hi
      - hello there
      - good morning
  - intent: playback_control
    examples: |
      - [pause](control)
      - [stop](control) the music
      - [skip]{"entity": "control", "value": "next"}
"""


def test_intent_model_is_cached_and_retrained_when_the_data_changes(tmp_path):
    embedder, _ = shared_models()
    path = tmp_path / "nlu.yml"
    path.write_text(TINY_NLU, encoding="utf-8")
    first = NLU.load(embedder=embedder, nlu_path=path)  # this test's own home: trains, caches
    cached = cache_dir("nlu") / f"intent-{cache_key(first.data.sha256, first.encoder)}.pkl"
    assert cached.is_file()
    stamp = cached.stat().st_mtime_ns
    again = NLU.load(embedder=embedder, nlu_path=path)
    assert cached.stat().st_mtime_ns == stamp  # loaded, not retrained
    assert again.parse("pause it").intent == "playback_control"

    path.write_text(TINY_NLU + "      - [next](control) please\n", encoding="utf-8")
    other = NLU.load(embedder=embedder, nlu_path=path)
    assert other.data.sha256 != first.data.sha256
    key = cache_key(other.data.sha256, other.encoder)
    assert (cache_dir("nlu") / f"intent-{key}.pkl").is_file()

    cached.write_bytes(b"not a pickle")  # a broken cache is rebuilt, not an error
    path.write_text(TINY_NLU, encoding="utf-8")
    assert NLU.load(embedder=embedder, nlu_path=path).parse("hello").intent == "greet"


class _FakeRasa(BaseHTTPRequestHandler):
    """Answers /model/parse the way Rasa 3 does (Rasa itself cannot run in this venv)."""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/model/parse":
            self.send_response(404)
            self.end_headers()
            return
        text = body["text"]
        start = text.find("Nebula")
        doc = {
            "text": text,
            "intent": {"name": "play_music", "confidence": 0.93},
            "entities": [
                {"entity": "track", "value": "Nebula", "start": start, "end": start + 6,
                 "confidence_entity": 0.99, "extractor": "DIETClassifier"}
            ],
            "intent_ranking": [{"name": "play_music", "confidence": 0.93},
                               {"name": "recommend", "confidence": 0.05}],
        }  # fmt: skip
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_rasa_nlu_client_over_http():
    server = HTTPServer(("127.0.0.1", 0), _FakeRasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        parse = make_nlu("rasa", url).parse("play Nebula")
    finally:
        server.shutdown()
    assert parse.intent == "play_music" and parse.confidence == pytest.approx(0.93)
    assert [(e.entity, e.value, e.start, e.end) for e in parse.entities] == [
        ("track", "Nebula", 5, 11)
    ]
    assert parse.ranking[1] == ("recommend", 0.05)


def test_rasa_nlu_errors_are_one_line():
    with pytest.raises(NLUServiceError, match="cannot reach Rasa"):
        RasaNLU("http://127.0.0.1:9", timeout=2).parse("hi")
    with pytest.raises(ConfigError, match="http"):
        RasaNLU("localhost:5005")
    with pytest.raises(ConfigError, match="--rasa-url"):
        make_nlu("rasa", None)
    fallback = parse_from_rasa("x", {"intent": {"name": "nlu_fallback", "confidence": 0.2}})
    assert fallback.intent == "out_of_scope"
