"""``idp local``: run the local stack (the same as ``make dev``)."""

from __future__ import annotations

from idp_cli.terminal import EXIT_USAGE, Invocation, Subcommands, UsageError

MAX_PORT = 65535


def add_parser(commands: Subcommands) -> None:
    local = commands.add_parser("local", help="run the local stack (same as make dev)")
    local.add_argument("--host", help="address to listen on (default $IDP_HOST or 127.0.0.1)")
    local.add_argument("--port", type=int, help="port to listen on (default $IDP_PORT or 8000)")
    local.add_argument(
        "--tick-seconds",
        type=int,
        default=None,
        metavar="N",
        help="deliver the scheduled imports' tick every N seconds, as EventBridge does (default 60; 0: off)",
    )
    local.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (execution environments) per function (default $IDP_WORKERS or 4)",
    )
    # It starts the stack that the other commands find, so it looks for none.
    local.set_defaults(run=run_local)


def run_local(invocation: Invocation) -> int:
    # The local stack embeds moto and a worker pool; they load when it starts, not for every command.
    from idp_local.stack import StackError, run
    from idp_local.workers import MAX_WORKERS

    args = invocation.args
    if args.local or args.stack:
        raise UsageError("`idp local` starts the local stack; it takes no --local or --stack.")
    if args.port is not None and not 0 <= args.port <= MAX_PORT:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}.")
    if args.tick_seconds is not None and args.tick_seconds < 0:
        raise UsageError(f"--tick-seconds must be 0 (no ticks) or more, got {args.tick_seconds}.")
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be from 1 to {MAX_WORKERS}, got {args.workers}.")
    try:
        return run(
            args.host, args.port, out=invocation.out, tick_seconds=args.tick_seconds, workers=args.workers
        )
    except StackError as exc:
        invocation.err.write(f"idp: {exc}\n")
        return EXIT_USAGE
