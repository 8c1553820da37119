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
        help="build the demo library first if the catalog is empty, then chat over it",
    )
    parser.add_argument("--no-sound", action="store_true", help="do not open an audio output")
    parser.set_defaults(func=run)


def run(args) -> int:
    from assistant.chat import Chat
    from assistant.player import try_player
    from musicbert.paths import home_dir

    if args.demo:
        ensure_demo_library(args.db, args.checkpoint)
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
        from catalog.db import open_catalog

        return catalog_names(open_catalog(args.db))

    chat = Chat(
        load,
        player=player,
        player_problem=problem,
        names=names,
        history_path=home_dir() / "chat_history",
    )
    return chat.run()


def ensure_demo_library(db_url: str | None, checkpoint: str | None = None) -> None:
    """Build the demo library (``catalog.demo``) when the catalog holds no tracks."""
    from sqlalchemy import func, select

    from catalog.db import open_catalog
    from catalog.models import Track

    catalog = open_catalog(db_url)
    with catalog.session() as session:
        tracks = session.scalar(select(func.count(Track.id)))
    if tracks:
        return
    print("Building the demo library (first run only; a few minutes)…", flush=True)
    from assistant.model_loader import load_embedder
    from catalog.demo import build_demo_library

    summary = build_demo_library(catalog, embedder=load_embedder(checkpoint, catalog))
    print(f"Demo library ready: {summary.headline()}", flush=True)
