"""Voice: synthesised commands, Whisper hears them, from files and through PortAudio.

Speech is made here by espeak-ng and flite (several voices and speeds, names
from the demo library). Recognition is the real Whisper tiny.en from its
wheel. Capture goes through a real PortAudio input stream whose ALSA device
reads a file (tests/alsa_harness.py). Nothing is mocked. Without espeak-ng,
flite or the Whisper wheel these tests skip, and fail where CI=true.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.endpoint import Endpointer, EndpointerConfig
from assistant.phrasings import load_phrasings, number_words, short_commands, spoken_words
from assistant.pronounce import Pronouncer, ipa_to_arpabet
from assistant.recognizer import (
    PINNED_SHA256,
    STRETCH,
    _whisper_tokenizer,
    build_prompt,
    load_model,
    model_dir,
    normalise,
    ranked_names,
    verified_model_dir,
)
from assistant.speech_match import NameMatcher, library_matcher
from assistant.voice import (
    FRAME,
    RATE,
    NoSpeechError,
    Recognizer,
    VoiceError,
    endpoint,
    looks_like_noise,
    read_wav,
    speech_from_file,
    write_speech,
)
from musicbert.errors import AudioError, CheckpointError, UnsupportedFormatError
from tests.alsa_harness import (
    no_device_env,
    run_musicbert,
    run_python,
    write_alsa_config,
    write_capture_input,
)
from tests.real_parts import require_speech


@pytest.fixture(scope="module", autouse=True)
def _speech_parts():
    require_speech()


# Commands with names from the demo library, each said by every voice at every speed.
COMMANDS = [
    "play something by doug kaufman",
    "who composed the deep path",
    "how many tracks by maxstack",
    "play battle music",
]
VOICES = [("en-us", 175), ("en-gb", 140), ("en+f3", 175), ("flite:slt", 175)]
# Names as the demo library has them (a subset): what the prompt and the matcher hold.
LIBRARY = {
    "artist": ["Maxstack", "Doug Kaufman", "Wolfgang Amadeus Mozart", "Scott Joplin"],
    "track": ["Battle Music", "The Deep Path", "Siege of Laurelmor", "Maple Leaf Rag", "Nebula"],
    "album": ["The Battle for Wesnoth OST"],
}


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(LIBRARY)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict[tuple[str, str, int], Path]:
    folder = tmp_path_factory.mktemp("speech")
    return {
        (text, voice, speed): write_speech(text, folder / f"{i}-{voice}-{speed}.wav", voice, speed)
        for i, text in enumerate(COMMANDS)
        for voice, speed in VOICES
    }


# -- phrasings, prompt, weights ---------------------------------------------------------


def test_numbers_and_decades_are_spelled_as_spoken():
    assert number_words(120) == "one hundred twenty"
    assert number_words(1990) == "nineteen ninety"
    assert number_words(2005) == "two thousand five"
    assert number_words(2012) == "twenty twelve"
    assert spoken_words("Play the 80s & 1990s, track 2!") == (
        "play the eighties and nineteen nineties track two".split()
    )


def test_short_commands_come_from_the_nlu_data_one_intent_at_a_time():
    commands = short_commands(load_phrasings())
    assert "help" in commands[:8] and "pause" in commands
    assert all(len(c.split()) <= 4 and "<" not in c for c in commands)
    assert "what's the weather" not in commands  # out of scope, not a command


def test_prompt_keeps_the_budget_and_the_order():
    names = ranked_names(
        {
            "artist": ["Maxstack", "Doug Kaufman"],
            "track": ["Battle Music", "Der Lindenbaum (Winterreise)", "Chorale BWV 1.6: Jesu"],
            "album": ["Piano Pieces (rendered)"],
        }
    )
    # names with a word Whisper cannot spell unaided first (artists, then the rest), then
    # those of words it knows; no parentheses, no catalogue numbers
    assert names == ["Maxstack", "Der Lindenbaum", "Doug Kaufman", "Battle Music", "Piano Pieces"]
    prompt = build_prompt(["help", "next track"], names)
    assert prompt.startswith("Help. Next track. Maxstack, Der Lindenbaum,")
    assert build_prompt(["help"], []) == "Help."
    many = [f"Name Number {i}" for i in range(500)]
    short = build_prompt(["help"], many, budget=50)
    assert "Name Number 0," in short and "Name Number 400" not in short
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokens = tokenizer.encode(short, add_special_tokens=False)
    assert len(tokens.ids) <= 50


def test_catalog_names_put_the_biggest_artists_first(catalog_url):
    """On SQLite and PostgreSQL: the names Whisper is told come from the catalog."""
    from collections import Counter

    from assistant.voice import catalog_names
    from tests.qa_library import ROWS, build_library

    catalog = build_library(catalog_url)
    names = catalog_names(catalog)
    catalog.close()
    counts = Counter(row[1] for row in ROWS)
    assert [counts[a] for a in names["artist"]] == sorted(counts.values(), reverse=True)
    assert sorted(names["track"]) == sorted(row[0] for row in ROWS)
    prompt = Recognizer(names).prompt
    assert names["artist"][0] in prompt and "Help." in prompt


def test_transcripts_are_normalised_like_typed_text():
    assert normalise(" Play something by Max-Stack.") == "play something by max stack"
    assert normalise("What's 'Journey's End' about?") == "what's journey's end about"


def test_whisper_weights_are_found_and_pinned(tmp_path, monkeypatch):
    folder = verified_model_dir()
    assert folder.name == "model" and set(PINNED_SHA256) <= {p.name for p in folder.iterdir()}
    bad = tmp_path / "model"
    bad.mkdir()
    for name in PINNED_SHA256:
        if name != "model.bin":
            shutil.copy(folder / name, bad / name)
    (bad / "model.bin").write_bytes(b"not a model")
    monkeypatch.setenv("MUSICBERT_WHISPER_DIR", str(bad))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        verified_model_dir()
    (bad / "model.bin").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        verified_model_dir()


# -- matching names by sound -------------------------------------------------------------


@pytest.fixture(scope="module")
def matcher() -> NameMatcher:
    return library_matcher(LIBRARY)


def test_espeak_ipa_becomes_phones():
    assert ipa_to_arpabet("mˈæksstæk") == "M AE K S T AE K"
    assert ipa_to_arpabet("☃") is None
    assert Pronouncer()("maxstack") == "M AE K S T AE K"


def test_misheard_names_become_the_closest_library_name(matcher):
    # what Whisper and pocketsphinx made of synthesised voices saying these names
    for heard, meant in [
        ("play something by my ex tech", "play something by maxstack"),
        ("play something by max stack", "play something by maxstack"),
        ("who composed the deep past", "who composed the deep path"),
        ("play like leaf rag", "play maple leaf rag"),
    ]:
        assert matcher.correct(heard).text == meant, heard
    fixed = matcher.correct("play bottle music")
    assert (fixed.text, fixed.slot, fixed.heard) == ("play battle music", "track", "bottle music")


def test_a_misheard_command_word_snaps_to_the_phrasing_that_sounds_closest(matcher):
    # what Whisper tiny.en made of espeak-ng and flite voices
    for heard, meant in [
        ("how many tracks i maxstack", "how many tracks by maxstack"),
        ("post the music", "pause the music"),
        ("play something like doug kaufman", "play something by doug kaufman"),  # an artist
    ]:
        assert matcher.correct(heard).text == meant, heard
    # an artist is never put where a phrasing wants a title, nor a short word snapped
    assert matcher.correct("more like maxstack").text == "more like maxstack"
    assert matcher.correct("hell").text == "hell"
    # the cost: a phrasing the NLU data lacks may become its sound-alike that it has
    assert matcher.correct("play something like this").text == "play something like it"


def test_name_correction_leaves_known_and_unrelated_words_alone(matcher):
    for text in [
        "play something by doug kaufman",  # a phrasing with a library name
        "play something by mozart",  # part of a name: the NLU resolves it
        "recommend some calm piano music",  # names in a row, no phrasing has exactly
        "how long is this track",  # a phrasing's own words in the slot's place
        "play something like it",
        "next track",
        "what's the capital of peru",  # fits no phrasing
        "play something by queen",  # a third of the sound or less: not a library name
        "",
    ]:
        assert matcher.correct(text).text == text


# -- end-pointing and bad audio ----------------------------------------------------------


def test_endpoint_trims_silence_around_speech(spoken, tmp_path):
    wav = spoken[(COMMANDS[0], "en-us", 175)]
    data, rate = sf.read(str(wav), dtype="float32")
    padded = tmp_path / "padded.wav"
    silence = np.zeros(rate, np.float32)
    sf.write(str(padded), np.concatenate([silence, data, silence]), rate)
    speech = speech_from_file(padded)
    spoken_seconds = np.count_nonzero(np.abs(data) > 1e-3) / rate
    assert spoken_seconds - 0.3 < len(speech) / RATE < len(data) / rate + 0.8


def test_silence_noise_and_bad_files_are_clear_errors(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(RATE * 2, np.float32), RATE)
    with pytest.raises(NoSpeechError, match="no speech"):
        speech_from_file(silent)
    noisy = tmp_path / "noise.wav"
    rng = np.random.default_rng(1)
    sf.write(str(noisy), (0.2 * rng.standard_normal(RATE * 2)).astype(np.float32), RATE)
    with pytest.raises(VoiceError, match="noise"):
        speech_from_file(noisy)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        speech_from_file(empty)
    no_frames = tmp_path / "noframes.wav"
    sf.write(str(no_frames), np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioError):
        speech_from_file(no_frames)
    text = tmp_path / "command.txt"
    text.write_text("play battle music")
    with pytest.raises(UnsupportedFormatError):
        speech_from_file(text)


def test_speech_is_not_mistaken_for_noise(spoken):
    for wav in spoken.values():
        assert not looks_like_noise(speech_from_file(wav))
    with pytest.raises(NoSpeechError):
        endpoint(np.zeros(RATE, np.float32))


def test_cli_rejects_bad_files_in_one_line(tmp_path):
    text = tmp_path / "command.txt"
    text.write_text("play battle music")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(RATE, np.float32), RATE)
    for path, expect in [(text, "unsupported format"), (silent, "no speech")]:
        proc = run_musicbert(["voice", "--file", str(path)], env=no_device_env(tmp_path / "h"))
        assert proc.returncode == 2
        assert expect in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


# -- recognition ---------------------------------------------------------------------------


def test_synthesised_commands_are_recognised(spoken, recognizer):
    """Most takes parse as the typed command does (intent and entities) and about half
    are word for word: a floor against regressions, well under what benchmarks/voice.py
    measures. 11 of these 16 with the first Whisper version, 9 with issue 13's second
    pass (which no longer snaps "play something like doug kaufman" to "by" unless Whisper
    agrees), while the benchmark's 704 takes went up on every set (README)."""
    from tests.dialogue_library import shared_models

    nlu = shared_models()[1]

    def key(text: str) -> tuple:
        parse = nlu.parse(text)
        return parse.intent, sorted((e.entity, e.value) for e in parse.entities)

    heard = {k: recognizer.recognize(speech_from_file(wav)) for k, wav in spoken.items()}
    texts = {k: t.text for k, t in heard.items()}
    same_parse = [k for k, t in heard.items() if key(t.text) == key(k[0])]
    assert len(same_parse) >= 8, texts
    assert sum(t.text == k[0] for k, t in heard.items()) >= len(heard) // 2, texts
    assert all(t.model == "whisper" and t.decode_s > 0 for t in heard.values())


@pytest.mark.parametrize(
    "text, voice, speed, intent, entity",
    [
        ("play something by maxstack", "en+f3", 175, "play_music", ("artist", "Maxstack")),
        ("put on siege of laurelmor", "en-us", 140, "play_music", ("track", "Siege of Laurelmor")),
        ("volume up", "flite:rms", 175, "playback_control", ("control", "volume_up")),
        ("help", "en-gb", 140, "help", None),
        ("pause the music", "flite:awb", 160, "playback_control", ("control", "pause")),
    ],
)
def test_spoken_names_and_short_commands_parse_like_typed(
    tmp_path, recognizer, text, voice, speed, intent, entity
):
    """synthesised speech -> Whisper with the library's names -> the NLU: the typed parse."""
    from tests.dialogue_library import shared_models

    wav = write_speech(text, tmp_path / "cmd.wav", voice, speed)
    heard = recognizer.recognize(speech_from_file(wav))
    parse = shared_models()[1].parse(heard.text)
    assert parse.intent == intent, (heard, parse.ranking)
    if entity:
        assert entity in [(e.entity, e.value) for e in parse.entities], heard


def test_a_name_outside_the_prompt_is_matched_by_sound(tmp_path):
    """With more names than fit the prompt, a name left out is still found by its sound."""
    names = {
        # names Whisper cannot spell either, ahead of Maxstack in the catalog's order
        "artist": [f"Quaxtrel Zorbin {i}" for i in range(200)] + ["Maxstack"],
        "track": [],
        "album": [],
    }
    rec = Recognizer(names)
    # a shorter name may fill the budget's last tokens: take it out as a longer one would be
    rec.prompt, rec._prompt_ids = rec.prompt.replace(" Maxstack.", ""), None
    assert "Maxstack" not in rec.prompt
    wav = write_speech("play something by maxstack", tmp_path / "cmd.wav", "en-us", 150)
    heard = rec.recognize(speech_from_file(wav))
    assert heard.text == "play something by maxstack", heard


def test_recognition_is_repeatable(spoken, recognizer):
    wav = spoken[(COMMANDS[1], "en-gb", 140)]
    speech = speech_from_file(wav)
    assert recognizer.recognize(speech).text == recognizer.recognize(speech).text


# -- capture through PortAudio -------------------------------------------------------------

CAPTURE = textwrap.dedent(
    """
    import json, os, signal
    from assistant.voice import Recognizer, listen
    from musicbert.errors import MusicBertError
    cancel = os.environ.get("CANCEL") == "1"
    # a terminal's Ctrl-C, even where this test was started in the background (a shell
    # then starts its children with SIGINT ignored, and Python keeps it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rec = Recognizer({"artist": ["Doug Kaufman"], "track": [], "album": []})
    def start():
        if cancel:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while recording
    try:
        u = listen(rec, on_start=start)
        print(json.dumps({"text": u.transcript.text, "seconds": len(u.speech) / 16000}))
    except MusicBertError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    """
)


def capture(tmp_path: Path, wav: Path | None, env_extra: dict | None = None, **kw) -> dict:
    raw = write_capture_input(wav, tmp_path / "mic.raw", **kw)
    setup = write_alsa_config(tmp_path / "alsa", capture_input=raw)
    env = setup.env()
    env.update(env_extra or {})
    proc = run_python(CAPTURE, env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_microphone_capture_hears_the_same_command(tmp_path, spoken, recognizer):
    wav = spoken[(COMMANDS[0], "en-us", 175)]
    out = capture(tmp_path, wav)
    assert out["text"] == recognizer.recognize(speech_from_file(wav)).text
    assert "doug kaufman" in out["text"]
    assert 1.0 < out["seconds"] < 4.0


def test_microphone_silence_and_noise(tmp_path):
    assert capture(tmp_path / "s", None, trail_silence=8.0)["error"] == "NoSpeechError"
    rng = np.random.default_rng(2)
    noise = (0.2 * rng.standard_normal(RATE * 2)).astype(np.float32)
    assert capture(tmp_path / "n", None, noise=noise)["error"] == "VoiceError"


def test_ctrl_c_while_recording_cancels_cleanly(tmp_path, spoken):
    out = capture(tmp_path, spoken[(COMMANDS[1], "en-us", 175)], {"CANCEL": "1"}, lead_silence=3)
    assert out == {"error": "RecordingCancelled", "message": "recording cancelled"}


def test_no_microphone_is_a_clear_error(tmp_path):
    proc = run_python(CAPTURE, no_device_env(tmp_path))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] == "DeviceUnavailableError"
    assert out["message"].startswith("no microphone")


def test_frame_size_is_30ms():
    assert FRAME / RATE == pytest.approx(0.03)


def test_spoken_answer_reaches_the_output_device_and_is_understood(tmp_path, recognizer):
    setup = write_alsa_config(tmp_path / "alsa", output_rate=RATE, output_channels=1)
    # not "play battle music": with this prompt Whisper hears espeak-ng's en-us say "play
    # metal music", a genre request (benchmarks/voice.py: 6 of 11 voices right)
    code = "from assistant.voice import speak; speak('play the deep path', voice='en-us')"
    proc = run_python(code, setup.env())
    assert proc.returncode == 0, proc.stderr
    played, rate = setup.played()
    assert rate == RATE and played.shape[0] > RATE // 2
    assert recognizer.recognize(endpoint(played[:, 0])).text == "play the deep path"


def test_speaking_without_an_output_device_is_a_clear_error(tmp_path):
    code = textwrap.dedent(
        """
        from assistant.voice import speak
        from musicbert.errors import DeviceUnavailableError
        try:
            speak("hello")
        except DeviceUnavailableError as exc:
            print("ERR", exc)
        """
    )
    proc = run_python(code, no_device_env(tmp_path))
    assert proc.stdout.startswith("ERR no audio output device"), proc.stderr


def test_a_file_that_starts_mid_word_keeps_its_first_syllable(tmp_path):
    # espeak-ng starts speaking at the first sample: no silence to measure a noise floor from
    for i, text in enumerate(["something faster", "next track", "help"]):
        samples = read_wav(write_speech(text, tmp_path / f"{i}.wav", "en-gb", 140))
        speech = endpoint(samples)
        loud = np.count_nonzero(np.abs(samples) > 1e-2)
        assert np.count_nonzero(np.abs(speech) > 1e-2) == loud, text


def test_endpointer_lets_decoding_start_before_the_hangover(spoken):
    """listen() decodes after early_s of silence; the end-pointer reports that moment."""
    samples = read_wav(spoken[(COMMANDS[0], "en-us", 175)])
    samples = np.concatenate([np.zeros(RATE // 2, np.float32), samples, np.zeros(RATE, np.float32)])
    config = EndpointerConfig()
    pointer = Endpointer(config)
    early_at = None
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        pointer.push(samples[i : i + FRAME])
        if early_at is None and pointer.quiet_s >= config.early_s:
            early_at = pointer.frames
        if pointer.done:
            break
    assert pointer.done and early_at is not None
    waited = (pointer.end - early_at) * FRAME / RATE
    assert waited == pytest.approx(config.hangover_s - config.early_s, abs=0.05)
    assert pointer.speech_stop() == pointer.last_loud + 1 + round(config.early_s * RATE / FRAME)


# -- issue 13: readings, rescoring, Silero -------------------------------------------------


def test_a_reading_whisper_repeats_is_said_once():
    from assistant.recognizer import _unrepeated

    assert _unrepeated("volume up volume up volume up") == "volume up"
    assert _unrepeated("play battle music play battle music") == "play battle music"
    assert _unrepeated("bye bye") == "bye bye"  # a phrasing, not a loop
    assert _unrepeated("play some music by some one") == "play some music by some one"
    # a word written three times or more at the end is Whisper looping: once
    assert _unrepeated("help help help") == "help"
    assert _unrepeated("can you recommend some things had th th th th") == (
        "can you recommend some things had th"
    )


def test_a_stretched_log_mel_is_the_same_sound_spoken_slower():
    from assistant.recognizer import _stretched

    ramp = np.tile(np.arange(9, dtype=np.float32), (3, 1))  # 3 bands, 9 frames
    slower = _stretched(ramp, 4 / 3)
    assert slower.shape == (3, 12)
    assert slower[:, 0].tolist() == [0, 0, 0] and slower[:, -1].tolist() == [8, 8, 8]
    assert np.all(np.diff(slower, axis=1) > 0)  # the same rise, in more frames
    assert _stretched(ramp, 1.0) is ramp


def test_readings_of_two_decodings_are_merged_firsts_first_each_text_once():
    from assistant.recognizer import Hypothesis, _merged

    one = [Hypothesis("play metal music", -0.1), Hypothesis("play battle music", -0.2)]
    two = [Hypothesis("play battle music", -0.1), Hypothesis("pay battle music", -0.3)]
    assert [h.text for h in _merged(one, two)] == [
        "play metal music",
        "play battle music",
        "pay battle music",
    ]


def test_respellings_split_and_join_words_heard_wrongly_together_or_apart(matcher):
    # a compound heard as one word, one word heard as three (Whisper tiny.en, synthetic voices)
    assert "recommend some calm piano music" in matcher.respellings("recommend some compiano music")
    assert "search for some harpsichord music" in matcher.respellings(
        "search for some harp sick or music"
    )
    assert "play something by kaufman" in matcher.respellings("play something by coffment")
    assert matcher.respellings("play something by doug kaufman") == []  # every word known


def test_names_near_are_the_library_names_that_sound_like_words_heard(matcher):
    assert matcher.names_near(["play metal music"])[0] == "battle music"
    assert "siege of laurelmor" in matcher.names_near(["put on siege of lorelomer"])
    assert matcher.names_near(["what time is it"]) == []
    assert matcher.names_near(["play the deep path"]) == []  # already a name


def test_the_domain_prior_favours_named_phrasings_and_the_library_names(recognizer):
    from assistant.recognizer import NAME_BONUS, OWN_WORDS_BONUS, PHRASING_BONUS, UNKNOWN_COST

    prior = recognizer.prior
    # both phrasings; one holds a library name (Whisper's own prior favours "metal")
    assert prior("play battle music") - prior("play metal music") == NAME_BONUS
    # "come" stands in the mood's place only as a phrasing's own word
    gap = prior("recommend some calm piano music") - prior("recommend some come piano music")
    assert gap == PHRASING_BONUS - OWN_WORDS_BONUS
    assert prior("what's the capital of peru") == -UNKNOWN_COST  # no phrasing, one word unknown
    # a title that is a common word ("Silence") is no sign of a library name
    titled = Recognizer({"artist": ["Maxstack"], "track": ["Silence", "Battle Music"]}).prior
    assert titled("play battle music") - titled("play silence") == NAME_BONUS
    assert titled("play something by maxstack") == titled("play battle music")


def test_a_request_the_nlu_understands_in_new_words_is_favoured_like_a_phrasing():
    """People ask in words the NLU data lacks: a text the NLU reads as a request, every word
    known, gets the bonus a phrasing by its own words gets; an unknown word or the NLU's
    fallback gets none, and a phrasing needs no NLU."""
    from assistant.nlu import RasaNLU
    from assistant.recognizer import OWN_WORDS_BONUS
    from tests.dialogue_library import shared_models

    rec = Recognizer(LIBRARY, shared_models()[1])
    texts = ["skip to the next song", "what is the capital of peru", "play battle music"]
    assert rec.understood(texts) == {"skip to the next song"}
    assert Recognizer(LIBRARY).understood(texts) == set()  # no NLU, no guess
    gap = rec.prior("skip to the next song", True) - rec.prior("skip to the next song")
    assert gap == OWN_WORDS_BONUS
    # a Rasa server that does not answer leaves the choice to Whisper's ear (the turn's own
    # parse says what is wrong)
    gone = Recognizer(LIBRARY, RasaNLU("http://127.0.0.1:9"))
    assert gone.understood(texts) == set()


def test_a_name_that_sounds_like_words_heard_is_put_in_their_place(matcher):
    # "play metal music" is a phrasing (a genre): the name is one more candidate to score
    assert matcher.with_names_near("play metal music")[0] == "play battle music"
    assert matcher.with_names_near("what time is it") == []
    # a name alone is no command: the whole text is never replaced
    assert "battle music" not in matcher.with_names_near("metal music")


def test_a_phrasing_with_names_in_its_slots_is_told_from_one_with_its_own_words(matcher):
    assert matcher.is_named_phrasing("recommend some calm piano music")  # tags in slots
    assert matcher.is_named_phrasing("play something by doug kaufman")
    assert matcher.is_named_phrasing("help")  # a phrasing as written
    # "come" fills the mood's place only as a word some phrasing has
    assert matcher.is_phrasing("recommend some come piano music")
    assert not matcher.is_named_phrasing("recommend some come piano music")
    assert not matcher.is_named_phrasing("what's the capital of peru")


def test_nearby_phrasings_put_a_whole_name_for_a_word_of_one(matcher):
    found = [text for text, _ in matcher.nearby("play something back on kaufman", 3, 0.6)]
    assert "play something by doug kaufman" in found
    assert matcher.nearby("what's the capital of peru", 3, 0.8) == []


def test_a_misheard_command_is_rescored_by_whisper_against_the_audio(tmp_path, recognizer):
    """The phrasings that sound like a reading are scored by Whisper itself: its ear picks."""
    wav = write_speech("play something by doug kaufman", tmp_path / "c.wav", "en-us", 150)
    speech = speech_from_file(wav)
    readings, encoded = recognizer._read(speech, 1)
    bare = recognizer._prompt_ids_of(_whisper_tokenizer(load_model()), "")
    texts = ["play something by doug kaufman", "play something by maxstack", "help"]
    scores = recognizer._scores(encoded, texts, bare)
    assert scores[0] > max(scores[1:]) + 5, scores


def test_a_command_heard_right_is_not_corrected_into_a_name(tmp_path, recognizer):
    """Every correction is scored against the audio: "harpsichord", heard right, is not
    made the track name that sounds a little like "some harpsichord music"."""
    command = "search for some harpsichord music"
    heard_right = 0
    # these voices are heard exactly with the log-mel unstretched (stretched, Whisper
    # writes "harps accord" and the second pass mends it): the rule under test is the
    # ranking, the same for either encoding
    recognizer.stretch = 1.0
    try:
        for voice, speed in [("flite:slt", 175), ("flite:awb", 160), ("flite:rms", 175)]:
            wav = write_speech(command, tmp_path / "c.wav", voice, speed)
            heard = recognizer.recognize(speech_from_file(wav))
            if heard.heard == command:
                heard_right += 1
                assert heard.text == command, (voice, heard)
    finally:
        recognizer.stretch = STRETCH
    assert heard_right, "no voice was heard right: the test would prove nothing"


def test_silero_streamed_frame_by_frame_scores_as_on_the_whole_file(spoken):
    from faster_whisper.vad import get_vad_model

    from assistant.endpoint import SpeechDetector

    samples = read_wav(spoken[(COMMANDS[0], "en-gb", 140)])
    samples = samples[: len(samples) // 512 * 512]
    whole = get_vad_model()(samples).reshape(-1)
    detector = SpeechDetector.load()
    assert detector is not None
    streamed = []
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        before = len(detector._pending)
        detector.push(samples[i : i + FRAME])
        if before + FRAME >= SpeechDetector.CHUNK:
            streamed.append(detector.prob)
    assert np.allclose(streamed[: len(whole)], whole[: len(streamed)], atol=1e-4)


def test_in_a_noisy_room_silero_keeps_the_word_ends_the_gate_cuts(spoken):
    """Pink noise 20 dB under the speech: the energy gate loses the last word's end."""
    from assistant.endpoint import Endpointer, SpeechDetector

    clean = read_wav(spoken[(COMMANDS[1], "en-us", 175)])
    clean = clean * (0.3 / np.max(np.abs(clean)))
    rng = np.random.default_rng(4)
    lead, trail = np.zeros(RATE // 2, np.float32), np.zeros(RATE, np.float32)
    audio = np.concatenate([lead, clean, trail])
    loud = np.flatnonzero(np.abs(clean) > 0.003)
    level = np.sqrt(np.mean(clean[loud[0] : loud[-1]] ** 2))
    noise = np.fft.irfft(
        np.fft.rfft(rng.standard_normal(len(audio)))
        / np.sqrt(np.maximum(np.arange(len(audio) // 2 + 1), 1)),
        len(audio),
    )
    audio = (audio + noise / np.sqrt(np.mean(noise**2)) * level * 0.1).astype(np.float32)
    true_end = len(lead) + loud[-1] + 1
    stops = {}
    for name, detector in (("gate", None), ("silero", SpeechDetector.load())):
        pointer = Endpointer(EndpointerConfig(), detector=detector)
        for i in range(0, len(audio) - FRAME + 1, FRAME):
            pointer.push(audio[i : i + FRAME])
            if pointer.done:
                break
        assert pointer.noisy and pointer.done, name
        stops[name] = pointer.speech_stop() * FRAME
    assert stops["silero"] >= true_end - 0.03 * RATE, stops
    # a whole noisy file is end-pointed the same way
    assert len(endpoint(audio)) >= true_end - 0.03 * RATE - len(lead)
