"""Command line: ``edge serve``, ``edge check``, ``edge --version``.

Owns: argument parsing, logging set-up, reading ``os.environ`` once into a Config, the exit code.
Must not: contain server logic (``main.serve`` does) or be imported by any other module.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import API_VERSION, __version__
from .errors import ConfigError
from .mail.settings import add_arguments as add_mail_arguments, env_from_args as mail_env_from_args

LOG_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
              "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="A time-series blob store for edge devices "
                                     f"(ReductStore HTTP API {API_VERSION}).")
    parser.add_argument("--version", action="version", version=f"edge {__version__} (ReductStore API {API_VERSION})")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (settings from RS_* variables; flags override them)")
    serve.add_argument("--data-path", help="storage folder (RS_DATA_PATH, default ./edge-data)")
    serve.add_argument("--host", help="listen address (RS_HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (RS_PORT, default 8383)")
    serve.add_argument("--api-token", help="full-access token 'init-token' (RS_API_TOKEN); without it and without "
                       "--disable-auth the first start generates a device token")
    serve.add_argument("--disable-auth", action="store_true", default=None,
                       help="serve without authentication (RS_DISABLE_AUTH=true); warned at every start")
    serve.add_argument("--log-level", help="TRACE, DEBUG, INFO, WARN, ERROR (RS_LOG_LEVEL)")
    serve.add_argument("--base-path", help="URL prefix (RS_API_BASE_PATH)")
    serve.add_argument("--cors-allow-origin", help="comma-separated origins (RS_CORS_ALLOW_ORIGIN)")
    serve.add_argument("--sync", choices=["always", "none"], help="fsync policy of acknowledged writes (EDGE_SYNC)")
    add_mail_arguments(serve)
    check = sub.add_parser("check", help="open the data folder, repair torn tails, report what was dropped")
    check.add_argument("--data-path", help="storage folder (RS_DATA_PATH)")
    # ``edge check`` has none of serve's other flags: unset, as if not given (_config reads them all).
    parser.set_defaults(host=None, port=None, api_token=None, disable_auth=None, log_level=None, base_path=None,
                        cors_allow_origin=None, sync=None)
    return parser


def _config(args: argparse.Namespace):
    from .config import Config, normalise_base_path

    overrides = {
        "data_path": args.data_path,
        "host": args.host,
        "port": args.port,
        "api_token": args.api_token,
        "disable_auth": args.disable_auth,
        "log_level": args.log_level.upper() if args.log_level else None,
        "api_base_path": normalise_base_path(args.base_path) if args.base_path else None,
        "cors_allow_origin": (tuple(o.strip() for o in args.cors_allow_origin.split(",") if o.strip())
                              if args.cors_allow_origin is not None else None),
        "sync_policy": args.sync,
    }
    # Mail flags are laid over their EDGE_SMTP_* variables: edge.services.mail reads Config.env.
    return Config.from_env({**os.environ, **mail_env_from_args(args)}, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"edge: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=LOG_LEVELS.get(config.log_level, logging.INFO),
                        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "check":
        return _check(config)
    return _serve(config)


def _serve(config) -> int:
    import trio

    from . import main as server

    def ready(urls: list[str]) -> None:
        try:
            from . import sdnotify

            sdnotify.notify("READY=1\nSTATUS=listening on " + ", ".join(urls))
        except ImportError:
            pass

    try:
        trio.run(lambda: server.serve(config, handle_signals=True, on_ready=ready))
    except OSError as exc:
        logging.getLogger("edge").error("cannot start: %s", exc)
        return 1
    except BaseException as exc:
        errors = _config_errors(exc)
        if not errors:
            raise
        for error in errors:
            print(f"edge: configuration error: {error}", file=sys.stderr)
        return 2
    return 0


def _config_errors(exc: BaseException) -> list[ConfigError] | None:
    """The ConfigErrors ``exc`` consists of, else None (Trio wraps what is raised in a nursery)."""
    if isinstance(exc, ConfigError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found: list[ConfigError] = []
        for inner in exc.exceptions:
            sub = _config_errors(inner)
            if sub is None:
                return None
            found += sub
        return found
    return None


def _unreadable_headers(entry) -> list[str]:
    """Frame headers that rotted in blocks start-up trusts from their index (the record is still
    served from the index and its checked payload, but a rebuilt index would lose it): each
    block file scanned as recovery would (blocking; ``edge check`` may take its time)."""
    from .formats.recovery import scan
    from .store import files

    out = []
    for b in list(entry.blocks):
        path = entry._blk(b.id)
        data = files.read_file(path) or b""
        plan = scan(data[: b.file_size], verify_payload=False)
        for start, end, why in plan.skipped:
            out.append(f"block {path.name}: bytes {start}-{end} unreadable ({why})")
        if plan.torn_bytes:
            out.append(f"block {path.name}: bytes {plan.good_end}-{len(data[: b.file_size])} unreadable "
                       f"({plan.reason})")
    return out


def _check(config) -> int:
    """Check every small state file (``edge.state_files``), open (and so repair) the folder, then
    read every payload: start-up trusts the index of a sealed block and never reads its payloads,
    so rot there shows only here (or as a 500 on read). Exit code 1 when records remain that
    cannot be served, or a state file is damaged (or a damaged copy still waits for a human)."""
    from . import state_files
    from .errors import EdgeError
    from .store import Engine

    findings = state_files.check(config.data_path) if config.data_path.is_dir() else []
    for finding in findings:
        print(f"{finding.path}: {finding.text}")
    engine = Engine.open(config.data_path, defaults=config.default_bucket, limits=config.engine_limits)
    corrupt = 0
    try:
        report = list(engine.recovery_report)
        for line in report:
            print(line)
        buckets = engine.bucket_names()
        records = 0
        for name in buckets:
            bucket = engine.get_bucket(name)
            for entry_name in bucket.entry_names(include_meta=True):
                entry = bucket.get_entry(entry_name)
                for ref in entry.iter_refs():
                    records += 1
                    try:
                        for _ in entry.read_payload(ref):
                            pass
                    except EdgeError as exc:
                        corrupt += 1
                        print(f"{name}/{entry_name}: record {ref.ts_us} cannot be served: {exc}")
                for line in _unreadable_headers(entry):
                    corrupt += 1
                    print(f"{name}/{entry_name}: {line}")
        # found by the store as it opened (block summaries; settings were named above already)
        named = {f.path for f in findings}
        damaged = len(findings) + sum(1 for d in engine.damaged if d.path not in named)
        print(engine.torn.summary())
        print(f"checked {len(buckets)} buckets, {records} records; {len(report)} problems repaired, "
              f"{corrupt} corrupt records, {damaged} damaged state files")
    finally:
        engine.close()
    return 1 if corrupt or damaged else 0


if __name__ == "__main__":
    sys.exit(main())
