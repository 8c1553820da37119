"""``musicbert voice [--file WAV] [--speak]``: one spoken command, handled like typed text."""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "voice",
        help="say one command (microphone, or --file WAV); the transcript is handled like text",
        description=(
            "Record one command from the microphone (or read it from --file), recognise it "
            "offline with Whisper tiny.en (prompted with the library's names), print the "
            "transcript and handle it exactly like typed text. --speak says the answer aloud "
            "with espeak-ng."
        ),
    )
    parser.add_argument("--file", metavar="WAV", help="read the command from an audio file")
    parser.add_argument("--speak", action="store_true", help="say the answer with espeak-ng")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice for --speak")
    parser.add_argument("--json", action="store_true", help="print transcript and reply as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    import time

    from assistant.player import try_player
    from assistant.recognizer import load_model, preload
    from assistant.render import reply_text
    from assistant.voice import Recognizer, Utterance, listen, speak, speech_from_file
    from musicbert.errors import DeviceUnavailableError

    speech = speech_from_file(args.file) if args.file else None  # bad files fail fast
    player = None
    if not args.file:  # a command said live may ask to play; a file is for scripts
        player, _problem = try_player()
    from assistant.dialogue import Assistant

    assistant = Assistant.from_defaults(db_url=args.db, checkpoint=args.checkpoint, player=player)
    recognizer = Recognizer.for_assistant(assistant)
    if speech is not None:
        load_model()  # loaded before the clock starts: a file's speech has already ended
        ended = time.perf_counter()  # a file's speech has ended before we start
        utterance = Utterance(speech, recognizer.recognize(speech), ended)
    else:
        preload()  # the model loads while the person speaks
        utterance = listen(
            recognizer, on_start=lambda: print("listening… (Ctrl-C cancels)", file=sys.stderr)
        )
    text = utterance.transcript.text
    raw = utterance.transcript.heard or text
    if not args.json:
        if raw != text:  # a misheard name was snapped to the library's closest-sounding one
            print(f"heard: {raw} -> {text} (name matched by sound)")
        else:
            print(f"heard: {text or '(no words recognised)'}")
    reply = assistant.handle(text) if text else None
    answered = time.perf_counter()
    if args.json:
        out = {
            "transcript": text,
            "heard": raw,  # the recogniser's own words, before name matching
            "speech_model": utterance.transcript.model,
            "end_of_speech_to_answer_s": round(answered - utterance.ended_at, 3),
            "reply": reply.to_json() if reply else None,
        }
        print(json.dumps(out, indent=2, default=str, ensure_ascii=False))
    elif reply is not None:
        print(reply_text(reply))
    if args.speak and reply is not None:
        try:
            speak(reply.text, voice=args.voice)
        except DeviceUnavailableError as exc:
            print(f"(not spoken: {exc})", file=sys.stderr)
    if player is not None and player.status().state == "playing":
        print("(playing; Ctrl-C stops)", file=sys.stderr)
        try:
            player.wait_until_stopped()
        finally:
            player.close()
    return 0 if text else 1
