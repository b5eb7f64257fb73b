"""The ``csms`` command: ``serve``, ``db upgrade``, ``station add|list|set-profile``,
``token create|list|revoke``.

Every subcommand reads the same settings (defaults < file < environment < flags).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from csms.logs import configure_logging
from csms.settings import Settings, SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="csms", description="OCPP 1.6J / 2.0.1 central system with automated diagnostics."
    )
    parser.add_argument("--config", type=Path, help="settings file (TOML); "
                        "default $CSMS_CONFIG, else config/csms.toml if present")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the central system")
    serve.add_argument("--host", help="listen address (ocpp.host and http.host)")
    serve.add_argument("--ocpp-port", type=int, help="OCPP websocket port (default 9000)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--ftp-port", type=int, help="FTP upload port (default 2121)")
    serve.add_argument("--database-url", help="SQLAlchemy URL, e.g. "
                       "postgresql+asyncpg://user@host/db (default: SQLite in data_dir)")
    serve.add_argument("--data-dir", type=Path, help="folder for the SQLite file and uploads")
    serve.add_argument("--log-format", choices=["console", "json"])
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="N processes sharing the ports, as cluster nodes (needs "
                       "PostgreSQL and the MQTT broker); default 1")
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations up to the newest")
    upgrade.add_argument("--database-url")

    station = commands.add_parser("station", help="manage charging stations")
    station_commands = station.add_subparsers(dest="station_command", required=True)
    add = station_commands.add_parser(
        "add", help="register a station, optionally with a Basic auth password"
    )
    add.add_argument("station_id")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR",
                        help="read the password from this environment variable")
    secret.add_argument("--generate-password", action="store_true",
                        help="generate a password and print it once")
    add.add_argument("--location")
    add.add_argument("--owner")
    add.add_argument("--site")
    add.add_argument("--profile", type=int, choices=[0, 1, 2, 3],
                     help="OCPP security profile the station must connect with (default: "
                     "ocpp.default_security_profile)")
    add.add_argument("--database-url")
    set_profile = station_commands.add_parser(
        "set-profile", help="require a security profile of a station (default: the server's)"
    )
    set_profile.add_argument("station_id")
    set_profile.add_argument("profile", choices=["0", "1", "2", "3", "default"])
    set_profile.add_argument("--database-url")
    listing = station_commands.add_parser("list", help="list stations")
    listing.add_argument("--database-url")

    token = commands.add_parser("token", help="manage API tokens (roles viewer, operator, "
                                "admin)")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what uses it (shown in audit)")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--database-url")
    token_list = token_commands.add_parser("list", help="list tokens (never their secrets)")
    token_list.add_argument("--database-url")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.add_argument("--database-url")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    ocpp: dict[str, Any] = {}
    http: dict[str, Any] = {}
    if getattr(args, "host", None):
        ocpp["host"] = http["host"] = args.host
    if getattr(args, "ocpp_port", None) is not None:
        ocpp["port"] = args.ocpp_port
    if getattr(args, "http_port", None) is not None:
        http["port"] = args.http_port
    if ocpp:
        overrides["ocpp"] = ocpp
    if http:
        overrides["http"] = http
    if getattr(args, "ftp_port", None) is not None:
        overrides["uploads"] = {"ftp_port": args.ftp_port}
    if getattr(args, "database_url", None):
        overrides["database"] = {"url": args.database_url}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    logging: dict[str, Any] = {}
    if getattr(args, "log_format", None):
        logging["format"] = args.log_format
    if getattr(args, "log_level", None):
        logging["level"] = args.log_level
    if logging:
        overrides["logging"] = logging
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``csms`` console script and ``python -m csms``."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config, **_overrides(args))
        if getattr(args, "worker_index", None) is not None:
            from csms.workers import worker_overrides

            extra = worker_overrides(settings, args.worker_index)
            settings = load_settings(args.config, **_merge(_overrides(args), extra))
    except (SettingsError, ValidationError) as exc:
        print(f"csms: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.logging)
    if args.command == "serve":
        if args.workers != 1 and args.worker_index is None:
            from csms.workers import check, supervise

            problem = check(settings, args.workers)
            if problem:
                print(f"csms: {problem}", file=sys.stderr)
                return 2
            raw = list(sys.argv[1:] if argv is None else argv)
            return supervise(_without_workers(raw), args.workers)
        return _serve(settings)
    if args.command == "db":
        return asyncio.run(_db_upgrade(settings))
    if args.command == "token":
        return asyncio.run(_token(settings, args))
    if args.station_command == "add":
        return asyncio.run(_station_add(settings, args))
    if args.station_command == "set-profile":
        return asyncio.run(_station_set_profile(settings, args))
    return asyncio.run(_station_list(settings))


def _without_workers(argv: list[str]) -> list[str]:
    """``argv`` without ``--workers N`` / ``--workers=N``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _serve(settings: Settings) -> int:
    from csms.app import CentralSystem
    from csms.runtime import tune_gc

    tune_gc(settings.runtime)
    try:
        asyncio.run(CentralSystem(settings).serve_forever())
    except (OSError, SettingsError) as exc:
        print(f"csms: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


async def _db_upgrade(settings: Settings) -> int:
    from csms.store import Database

    database = Database(settings.database_url)
    try:
        await database.upgrade()
        print(f"database at revision {await database.current_revision()}")
    finally:
        await database.dispose()
    return 0


async def _station_add(settings: Settings, args: argparse.Namespace) -> int:
    from csms.security.passwords import generate_password, hash_password
    from csms.store import Database, Store

    password: str | None = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            print(f"csms: environment variable {args.password_env} is empty or unset",
                  file=sys.stderr)
            return 2
    elif args.generate_password:
        password = generate_password()
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        store = Store(database)
        await store.ensure_station(args.station_id)
        if password is not None:
            await store.set_password_hash(args.station_id, hash_password(password))
        await store.set_station_details(
            args.station_id, location=args.location, owner=args.owner, site=args.site
        )
        if args.profile is not None:
            await store.set_security_profile(args.station_id, args.profile)
    finally:
        await database.dispose()
    print(f"station {args.station_id} registered"
          + (" with Basic auth (security profile 1/2)" if password else "")
          + (f", security profile {args.profile}" if args.profile is not None else ""))
    if args.generate_password:
        print(f"password: {password}")
    return 0


async def _station_set_profile(settings: Settings, args: argparse.Namespace) -> int:
    from csms.store import Database, Store

    profile = None if args.profile == "default" else int(args.profile)
    database = Database(settings.database_url)
    try:
        await database.upgrade()
        found = await Store(database).set_security_profile(args.station_id, profile)
    finally:
        await database.dispose()
    if not found:
        print(f"csms: no station {args.station_id} (register it with 'csms station add')",
              file=sys.stderr)
        return 1
    shown = "the server default" if profile is None else f"security profile {profile}"
    print(f"station {args.station_id} now requires {shown}")
    return 0


async def _station_list(settings: Settings) -> int:
    from csms.store import Database, Store

    database = Database(settings.database_url)
    try:
        await database.upgrade()
        stations = await Store(database).list_stations()
    finally:
        await database.dispose()
    for station in stations:
        state = "online " if station.connected else "offline"
        print(f"{station.id:<30} {state} {station.protocol or '-':<6} "
              f"{station.vendor or '-'} {station.model or '-'}")
    return 0


async def _token(settings: Settings, args: argparse.Namespace) -> int:
    from csms.api import tokens
    from csms.store import Database, Store

    database = Database(settings.database_url)
    try:
        await database.upgrade()
        store = Store(database)
        if args.token_command == "create":
            new = tokens.generate()
            await store.create_token(token_id=new.token_id, name=args.name, role=args.role,
                                     secret_hash=new.secret_hash)
            print(f"token {new.token_id} ({args.role}) created for {args.name}; "
                  "it is shown only now:")
            print(new.value)
            return 0
        if args.token_command == "revoke":
            if await store.revoke_token(args.token_id):
                print(f"token {args.token_id} revoked")
                return 0
            print(f"csms: no active token {args.token_id}", file=sys.stderr)
            return 1
        for record in await store.list_tokens():
            state = "revoked" if record.revoked_at else "active"
            used = record.last_used_at.isoformat() if record.last_used_at else "never"
            print(f"{record.id}  {record.role:<8} {state:<7} last used {used:<32} "
                  f"{record.name}")
        return 0
    finally:
        await database.dispose()


if __name__ == "__main__":
    sys.exit(main())
