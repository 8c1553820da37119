"""``musicbert actions-server [--host 127.0.0.1] [--port 5055]``: the assistant's actions
for a Rasa server, over rasa_sdk's webhook (endpoints.yml points Rasa at it)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "actions-server",
        help="serve the assistant's custom actions to Rasa (rasa_sdk webhook)",
        description=(
            "Run rasa_sdk's action endpoint (POST /webhook) with the assistant's actions, "
            "so a Rasa server trained on assistant/rasa_project runs this assistant unchanged."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5055, help="port (default 5055)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import socket

    from musicbert.errors import ConfigError

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {args.port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    from assistant.rasa_actions import serve

    print(f"actions server on http://{args.host}:{args.port}/webhook", flush=True)
    serve(args.host, args.port, db_url=args.db)
    return 0
