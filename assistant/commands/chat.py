"""``musicbert chat [--demo]``: the terminal chat (assistant.chat does the work)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="talk to the assistant in the terminal (typed, or /voice)",
        description="An interactive chat about your music library: find, recommend, play, ask.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="chat over the demo library, building it in the background if it is not "
        "complete (answers use the tracks ready so far)",
    )
    parser.add_argument("--no-sound", action="store_true", help="do not open an audio output")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.chat import Chat
    from assistant.player import try_player
    from catalog.db import open_catalog
    from catalog.ingest_progress import library_growth
    from musicbert.paths import home_dir

    catalog = open_catalog(args.db)  # created here, before any background build opens it
    if args.demo:
        message = start_demo_library(catalog, args.db, args.checkpoint)
        if message:
            print(message, flush=True)
    player, problem = (None, None) if args.no_sound else try_player()

    def load():
        import warnings

        from assistant.commands.ask import repair_notices
        from assistant.dialogue import Assistant

        assistant = Assistant.from_defaults(
            db_url=args.db, checkpoint=args.checkpoint, player=player
        )
        for notice in repair_notices(assistant):
            warnings.warn(notice, stacklevel=1)  # the chat shows load warnings as notes
        return assistant

    def names():
        from assistant.voice import catalog_names

        return catalog_names(catalog)

    chat = Chat(
        load,
        player=player,
        player_problem=problem,
        names=names,
        history_path=home_dir() / "chat_history",
        growth=lambda: library_growth(catalog),
    )
    return chat.run()


def start_demo_library(catalog, db_url: str | None, checkpoint: str | None = None) -> str | None:
    """Start building the demo library in the background unless it is complete or being
    built; what to tell the person (None: nothing to say)."""
    from assistant.background import start_demo_build
    from catalog.demo import demo_complete

    if demo_complete(catalog):
        return None
    log = start_demo_build(catalog, db_url, checkpoint)
    if log is None:
        return "The demo library is being built in the background; answers use what is ready."
    return (
        "Building the demo library in the background (about 100 tracks; the bar below "
        "shows how far). Ask away: answers use the tracks ready so far."
    )
