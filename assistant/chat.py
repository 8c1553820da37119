"""The terminal chat: a prompt-toolkit session in front of the dialogue ``Assistant``.

The prompt shows before the heavy parts are loaded: the assistant (NLU,
MusicBERT, the search index) is built in a background thread while the person
types their first line, and only the first turn waits for it if it is not
ready. The names offered for completion come from the catalog by plain SQL,
also in the background.

Ctrl-C cancels what is happening (the line being typed, the turn being
answered, a recording) and returns to the prompt; Ctrl-D or ``/quit`` leaves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import FileHistory

from assistant.notes import is_ours
from assistant.render import duration, reply_text
from musicbert.errors import MusicBertError

PROMPT = "you> "
COMMANDS = {
    "/help": "what you can say and type",
    "/voice": "say one command into the microphone (push to talk)",
    "/map": "save a map of the library: /map [genre|artist|tempo] [FILE.png]",
    "/quit": "leave (Ctrl-D does too)",
}
HELP = """Talk about your music in plain words, for example:
  play battle music                 play something by Maxstack
  recommend something calm          more like this / something faster
  what's playing? / pause / next / louder
  how many tracks by Maxstack?      what key is Nebula in?
  add this to my road trip playlist what does 'tempo' mean?
Commands:
""" + "\n".join(f"  {name:<8} {text}" for name, text in COMMANDS.items())


class NameCompleter(Completer):
    """Completes slash commands, and artist/track/album/tag names anywhere in the line."""

    def __init__(self) -> None:
        self.names: list[tuple[str, str]] = []  # (name, kind)

    def set_names(self, names: dict[str, Iterable[str]]) -> None:
        seen: set[str] = set()
        out = []
        for kind, values in names.items():
            for value in values:
                if value and value.lower() not in seen:
                    seen.add(value.lower())
                    out.append((value, kind))
        self.names = sorted(out, key=lambda item: item[0].lower())

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if text.startswith("/") and " " not in text:
            for name, meta in COMMANDS.items():
                if name.startswith(text):
                    yield Completion(name, start_position=-len(text), display_meta=meta)
            return
        words = text.split(" ")
        offered: set[str] = set()
        for n in range(min(4, len(words)), 0, -1):  # longest fragment first: "the deep pa"
            fragment = " ".join(words[-n:])
            if len(fragment.strip()) < 2 or fragment != fragment.lstrip():
                continue
            low = fragment.lower()
            for name, kind in self.names:
                if name.lower().startswith(low) and name not in offered:
                    offered.add(name)
                    yield Completion(name, start_position=-len(fragment), display_meta=kind)


class Chat:
    """One chat session. ``load`` builds the assistant (called once, in the background)."""

    def __init__(
        self,
        load: Callable[[], Any],
        *,
        player: Any = None,
        player_problem: str | None = None,
        names: Callable[[], dict[str, Iterable[str]]] | None = None,
        recognizer: Callable[[Any], Any] | None = None,
        history_path: Path | None = None,
        out: TextIO | None = None,
        session_options: dict[str, Any] | None = None,
        growth: Callable[[], Any] | None = None,
    ) -> None:
        self._load = load
        self._growth = growth  # () -> catalog.ingest_progress.Growth | None
        self._growth_seen: tuple[float, Any] = (0.0, None)
        self._names_at = -1  # tracks ready when the names were last read
        self.player = player
        self.player_problem = player_problem
        self._names = names
        self._make_recognizer = recognizer
        self._recognizer: Any = None
        self.history_path = history_path
        self.out = out or sys.stdout
        self.completer = NameCompleter()
        self._session_options = session_options or {}
        self._assistant: Any = None
        self.notes: list[str] = []  # warnings from loading, shown once as one line each
        self._load_error: str | None = None
        self._ready = threading.Event()
        self._loader = threading.Thread(target=self._load_in_background, daemon=True)

    # -- loading ---------------------------------------------------------------------------

    def _load_in_background(self) -> None:
        import warnings

        try:
            if self._make_recognizer is None:  # the speech model loads while the person types
                from assistant.recognizer import preload

                preload()
            if self._names is not None:
                self.completer.set_names(self._names())
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._assistant = self._load()
            for warning in dict.fromkeys(str(w.message) for w in caught if is_ours(w.category)):
                self.notes.append(warning)
            self.notes.extend(getattr(self._assistant, "problems", []))
        except MusicBertError as exc:
            self._load_error = str(exc)
        except Exception as exc:  # keep the chat alive; say what broke
            self._load_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def assistant(self) -> Any:
        """The assistant, waiting for the background load if it is still running."""
        if not self._ready.is_set():
            self.say("(one moment: loading the library and the model…)")
            self._ready.wait()
        while self.notes:
            self.say(f"(note: {self.notes.pop(0)})")
        if self._assistant is None:
            raise MusicBertError(f"the assistant could not start: {self._load_error}")
        return self._assistant

    # -- the loop --------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def growth(self, max_age: float = 1.0) -> Any:
        """How far a background ingest of the library is (None: none runs), re-read at most
        once per ``max_age`` seconds (the toolbar asks twice a second)."""
        if self._growth is None:
            return None
        import time

        when, value = self._growth_seen
        if time.monotonic() - when >= max_age:
            try:
                value = self._growth()
            except Exception:  # a progress read never breaks the chat
                value = None
            self._growth_seen = (time.monotonic(), value)
        return value

    def toolbar(self) -> str:
        growing = self.growth()
        library = f"{growing.toolbar()}   |   " if growing is not None else ""
        if not self._ready.is_set():
            sound = "loading…"
        elif self.player is None:
            sound = "no sound output" if self.player_problem else "playback off"
        else:
            st = self.player.status()
            if st.item is None:
                sound = "■ stopped"
            else:
                mark = "▶" if st.state == "playing" else "⏸"
                sound = f"{mark} {st.item.title}  {duration(st.elapsed)}"
            sound += f"  vol {round(st.volume * 100)}%"
        return f" {library}{sound}   |   /help  /voice  /quit  Ctrl-D leaves"

    def run(self) -> int:
        self._loader.start()
        self.say("MusicBERT chat: ask for music in plain words. /help for examples, Ctrl-D leaves.")
        if self.player_problem:
            self.say(f"(no playback: {self.player_problem}; the chat goes on typed)")
        options: dict[str, Any] = {
            "completer": self.completer,
            "complete_while_typing": True,
            "bottom_toolbar": self.toolbar,
            "refresh_interval": 0.5,
        }
        if self.history_path is not None:
            options["history"] = FileHistory(str(self.history_path))
        options.update(self._session_options)
        session: PromptSession = PromptSession(**options)
        while True:
            try:
                line = session.prompt(PROMPT)
            except KeyboardInterrupt:  # drop the line being typed
                continue
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    break
                continue
            self.turn(line)
        growing = self.growth(max_age=0)
        if growing is not None:
            self.say(
                f"(the library keeps growing in the background: {growing.ready_text()}; "
                "the next chat picks up where it is)"
            )
        self.say("bye")
        if self.player is not None:
            self.player.close()
        return 0

    def command(self, line: str) -> bool:
        """A slash command; False means leave."""
        name = line.split()[0].lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/voice":
            self.voice_turn()
        elif name == "/map":
            self.map_command(line.split()[1:])
        else:
            self.say(f"unknown command {name}; try " + ", ".join(COMMANDS))
        return True

    def map_command(self, words: list[str]) -> None:
        """/map [genre|artist|tempo] [FILE.png]: the library map, saved as a PNG."""
        from catalog.library_map import COLOR_BY, library_map
        from musicbert.paths import home_dir

        colour = next((w for w in words if w in COLOR_BY), "genre")
        out = next((w for w in words if w.lower().endswith(".png")), None)
        out = out or str(home_dir() / f"map-{colour}.png")
        bot = self.assistant()
        try:
            m = library_map(bot.catalog, bot.embedder.model_id, bot.embedder.dim, out, colour)
        except MusicBertError as exc:
            self.say(f"sorry: {exc}")
            return
        self.say(f"Saved a map of {len(m.points)} tracks to {m.path} (coloured by {colour}); "
                 f"clusters: {'; '.join(m.clusters.values())}.")  # fmt: skip

    def turn(self, text: str) -> None:
        """One typed (or transcribed) line: handled by the assistant, the reply printed."""
        growing = self.growth(max_age=0)
        try:
            assistant = self.assistant()
            if growing is not None:
                self._new_names(assistant, growing.ready)
            elif self._names_at >= 0:  # it grew during this chat and has just finished
                self._new_names(assistant, -2)
                self._names_at = -1
                self.say("(the library is complete now: every track can be found)")
            reply = assistant.handle(text)
        except KeyboardInterrupt:
            self.say("(cancelled)")
            return
        except MusicBertError as exc:
            self.say(f"sorry: {exc}")
            return
        self.say(reply_text(reply))
        growing = self.growth(max_age=0) if growing is not None else None  # as of now
        if growing is not None:
            self.say(f"({growing.ready_text()}; the library is still growing)")

    def _new_names(self, assistant: Any, ready: int) -> None:
        """Artists, albums and titles that arrived since the last turn become known to the
        NLU (and to completion), so "play something by Maxstack" works once Maxstack does."""
        if ready == self._names_at:
            return
        self._names_at = ready
        refresh = getattr(getattr(assistant, "nlu", None), "refresh_names", None)
        catalog = getattr(assistant, "catalog", None)
        try:
            if refresh is not None and catalog is not None:
                refresh(catalog)
            if self._names is not None:
                self.completer.set_names(self._names())
        except Exception:  # names are a help, not a requirement
            pass

    def voice_turn(self) -> None:
        """Push to talk: record one command, show the transcript, then handle it as typed."""
        from assistant.player import find_device
        from assistant.voice import RecordingCancelled, listen

        try:
            find_device("input")  # no microphone: say so before loading the recogniser
            assistant = self.assistant()
            if self._recognizer is None:
                self.say("(preparing speech recognition…)")
                make = self._make_recognizer or _default_recognizer
                self._recognizer = make(assistant)
            utterance = listen(
                self._recognizer, on_start=lambda: self.say("listening… (Ctrl-C cancels)")
            )
        except RecordingCancelled:
            self.say("(recording cancelled)")
            return
        except KeyboardInterrupt:
            self.say("(cancelled)")
            return
        except MusicBertError as exc:
            self.say(f"{exc}; type your request instead")
            return
        text = utterance.transcript.text
        if not text:
            self.say("(heard something, but no words I know; please try again)")
            return
        heard = utterance.transcript.heard or text
        self.say(f"heard: {heard} -> {text}" if heard != text else f"heard: {text}")
        self.turn(text)


def _default_recognizer(assistant: Any) -> Any:
    from assistant.voice import Recognizer

    return Recognizer.for_assistant(assistant)
