"""FTP upload endpoint (aioftp): one STOR per slot, with the slot's one-time credentials.

Passive mode only (PASV/EPSV; the data ports come from a configured range or are ephemeral,
bound to the address the control connection came in on). A login is the user name and
password of an open upload slot (``ftp://user:password@host:port/`` in the location handed to
the charger); anonymous logins are refused, and unknown users are told to send a password
like everyone else, so user names cannot be probed. Logged in, a charger can STOR one file
under any name into the upload storage (same size limit and name sanitising as HTTP), and
little else: PWD is always ``/``, CWD only to ``/``; RETR, LIST, NLST, MLSD, MLST, SIZE, DELE,
RNFR/RNTO, MKD, RMD, APPE, STOU and SITE are refused with 550, REST with 502. After the upload
the slot is used: another STOR is refused and the credentials no longer log in (a failed
STOR uses the slot up as well, unless ``uploads.max_attempts`` allows more). Connections from
one address beyond ``limits.uploads_per_minute`` get 421 and are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path, PurePosixPath
from time import monotonic

import aioftp
from aioftp.common import Connection, ThrottleStreamIO

from csms.logs import get_logger
from csms.security.limits import AddressLimit, retry_after
from csms.uploads.registry import Refusal, SlotRefused
from csms.uploads.service import RATE_REFUSAL, UploadAttempt, Uploads
from csms.uploads.storage import EmptyUpload, UploadTooLarge

log = get_logger("csms.uploads.ftp")

ANONYMOUS_USERS = frozenset({"anonymous", "ftp", ""})
DENIED_COMMANDS = (
    "retr", "list", "nlst", "mlsd", "mlst", "size", "mdtm", "dele", "rnfr", "rnto",
    "mkd", "xmkd", "rmd", "xrmd", "appe", "stou", "site",
)  # fmt: skip
_VIRTUAL_ROOT = Path("/nonexistent-csms-ftp-root")
_EOF = "\x00eof"
"""Internal command for a control connection that ended (EOF, reset, idle timeout)."""
_ROOT = PurePosixPath("/")


class _SlotUsers(aioftp.AbstractUserManager):
    """Users are upload slots: the login is the slot's FTP user, checked against the registry."""

    def __init__(self, uploads: Uploads) -> None:
        super().__init__()
        self.uploads = uploads
        self.server: _UploadFtpServer | None = None

    async def get_user(
        self, login: str
    ) -> tuple[aioftp.AbstractUserManager.GetUserResponse, aioftp.User | None, str]:
        if login.strip().lower() in ANONYMOUS_USERS:
            log.warning("ftp_login_refused", user=login[:64])
            self.uploads.refused("ftp", Refusal.UNKNOWN)
            return self.GetUserResponse.ERROR, None, "anonymous login refused"
        user = aioftp.User(
            login=login,
            base_path=_VIRTUAL_ROOT,
            home_path=_ROOT,
            permissions=[aioftp.Permission(_ROOT, readable=False, writable=False)],
        )
        return self.GetUserResponse.PASSWORD_REQUIRED, user, "password required"

    async def authenticate(self, user: aioftp.User, password: str) -> bool:
        ok = self.uploads.registry.verify_ftp_login(
            user.login or "", password, now=self.uploads.clock()
        )
        if not ok:
            log.warning("ftp_login_refused", user=user.login)
            self.uploads.refused("ftp", Refusal.UNKNOWN)
        return ok

    async def notify_logout(self, user: aioftp.User) -> None:
        if self.server is not None:
            self.server.throttle_per_user.pop(user, None)


class _UploadFtpServer(aioftp.Server):
    def __init__(
        self,
        uploads: Uploads,
        users: _SlotUsers,
        *,
        idle_timeout: float,
        socket_timeout: float,
        data_connect_timeout: float,
        max_connections: int,
        passive_address: str | None,
        data_ports: range | None,
        rate_limit: AddressLimit | None,
    ) -> None:
        super().__init__(
            users,
            idle_timeout=idle_timeout,
            socket_timeout=socket_timeout,
            wait_future_timeout=data_connect_timeout,
            path_io_factory=aioftp.MemoryPathIO,  # type: ignore[arg-type]
            maximum_connections=max_connections,
            ipv4_pasv_forced_response_address=passive_address,
            data_ports=data_ports,
            welcome_message="CSMS diagnostics upload",
        )
        self.uploads = uploads
        self.rate_limit = rate_limit
        self.data_connect_timeout = data_connect_timeout
        self.commands_mapping = {
            "user": self.user,
            "pass": self.pass_,
            "quit": self.quit,
            "syst": self.syst,
            "noop": self._noop,
            "feat": self._feat,
            "opts": self._opts,
            "type": self.type,
            "mode": self._mode,
            "stru": self._stru,
            "allo": self._allo,
            "pwd": self.pwd,
            "cwd": self._cwd,
            "xcwd": self._cwd,
            "cdup": self._cdup,
            "pasv": self.pasv,
            "epsv": self.epsv,
            "stor": self._stor,
            "abor": self.abor,
            "rest": self._rest,
            _EOF: self._eof,
        }
        for command in DENIED_COMMANDS:
            self.commands_mapping[command] = self._denied

    async def parse_command(
        self, stream: aioftp.StreamIO, censor_commands: tuple[str] = ("pass",)
    ) -> tuple[str, str]:
        """One command line; a closed, reset, idle or garbled connection becomes ``_EOF``
        (aioftp would raise, and log every charger that hangs up without QUIT as an error).
        Lines that are not UTF-8 are read as Latin-1."""
        try:
            line = await stream.readline()
        except (OSError, TimeoutError, ValueError):
            return _EOF, ""
        if not line:
            return _EOF, ""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("latin-1")
        command, _, rest = text.rstrip("\r\n").partition(" ")
        return command.lower(), rest

    async def greeting(self, connection: Connection, rest: str | PurePosixPath) -> bool:
        """The welcome, or 421 and the end of the connection for an address over
        ``limits.uploads_per_minute`` (logged, counted as ``upload_rate``)."""
        limit = self.rate_limit
        wait = limit.hit(connection.client_host, monotonic()) if limit is not None else 0.0
        if wait:
            seconds = retry_after(wait)
            log.warning("ftp_connection_refused", client=connection.client_host,
                        limit="upload_rate", retry_after=seconds)
            self.uploads.refused("ftp", RATE_REFUSAL)
            connection.response("421", f"too many connections from this address; retry in "
                                       f"{seconds} s")
            return False
        return await super().greeting(connection, rest)

    async def _eof(self, connection: Connection, rest: str) -> bool:
        return False  # ends the dispatcher quietly, which cleans the connection up

    @staticmethod
    def _logged_in(connection: Connection) -> bool:
        if connection.future.logged.done():
            return True
        connection.response("530", "not logged in")
        return False

    async def _noop(self, connection: Connection, rest: str) -> bool:
        connection.response("200", "ok")
        return True

    async def _feat(self, connection: Connection, rest: str) -> bool:
        connection.response("211", ["features:", "EPSV", "PASV", "UTF8", "end"], True)
        return True

    async def _opts(self, connection: Connection, rest: str) -> bool:
        if rest.strip().lower() in ("utf8 on", "utf-8 on"):
            connection.response("200", "always in UTF8 mode")
        else:
            connection.response("501", "option not understood")
        return True

    async def _mode(self, connection: Connection, rest: str) -> bool:
        ok = rest.strip().upper() == "S"
        connection.response("200" if ok else "504", "stream mode" if ok else "only mode S")
        return True

    async def _stru(self, connection: Connection, rest: str) -> bool:
        ok = rest.strip().upper() == "F"
        connection.response("200" if ok else "504", "file structure" if ok else "only STRU F")
        return True

    async def _allo(self, connection: Connection, rest: str) -> bool:
        connection.response("202", "no storage allocation necessary")
        return True

    async def _rest(self, connection: Connection, rest: str) -> bool:
        connection.response("502", "restart not supported; send the whole file")
        return True

    async def _cwd(self, connection: Connection, rest: str) -> bool:
        if self._logged_in(connection):
            parts = [p for p in rest.replace("\\", "/").split("/") if p not in ("", ".")]
            if parts:
                connection.response("550", "no such directory")
            else:
                connection.response("250", '"/" is the current directory')
        return True

    async def _cdup(self, connection: Connection, rest: str) -> bool:
        if self._logged_in(connection):
            connection.response("550", "no such directory")
        return True

    async def _denied(self, connection: Connection, rest: str) -> bool:
        if self._logged_in(connection):
            connection.response("550", "permission denied")
        return True

    async def _stor(self, connection: Connection, rest: str) -> bool:
        if not self._logged_in(connection):
            return True
        if not connection.future.passive_server.done():
            connection.response("503", "bad sequence of commands (use PASV or EPSV first)")
            return True
        login = connection.user.login or ""
        try:
            attempt = await self.uploads.begin(login, "ftp")
        except SlotRefused as refused:
            log.warning("ftp_upload_refused", user=login, reason=str(refused.reason))
            self.uploads.refused("ftp", refused.reason)
            connection.response("550", refused.message)
            return True
        connection.response("150", "ready to receive")
        worker = asyncio.create_task(self._receive(connection, attempt, rest or None))
        connection.extra_workers.add(worker)
        return True

    async def _receive(
        self, connection: Connection, attempt: UploadAttempt, filename: str | None
    ) -> bool:
        """The STOR worker: data connection -> storage; answers on the control connection."""
        async with attempt:
            try:
                try:
                    await asyncio.wait_for(
                        asyncio.shield(connection.future.data_connection),
                        self.data_connect_timeout,
                    )
                except TimeoutError:
                    connection.response("425", "can't open data connection")
                    return True
                stream: ThrottleStreamIO = connection.data_connection
                del connection.data_connection
                with contextlib.closing(stream):
                    async for block in stream.iter_by_block(connection.block_size):
                        await attempt.write(block)
                    await attempt.finish(filename)
            except UploadTooLarge as exc:
                connection.response("552", f"exceeded storage allocation ({exc.limit} bytes)")
            except EmptyUpload:
                connection.response("550", "empty upload refused")
            except asyncio.CancelledError:
                # ABOR, or the server closing: answer like aioftp's own workers do and end
                # quietly (the dispatcher would re-raise a cancelled worker's error).
                connection.response("426", "transfer aborted")
                connection.response("226", "abort successful")
            except (TimeoutError, OSError):
                connection.response("426", "connection closed; transfer aborted")
            except Exception:
                log.exception("ftp_upload_failed", user=connection.user.login)
                connection.response("451", "local error in processing")
            else:
                connection.response("226", "transfer complete")
        return True


class FtpUploadServer:
    """The FTP endpoint chargers upload logs to; start and stop it with the central system."""

    def __init__(
        self,
        uploads: Uploads,
        *,
        host: str = "0.0.0.0",
        port: int = 2121,
        passive_ports: tuple[int, int] | None = None,
        passive_address: str | None = None,
        idle_timeout: float = 120.0,
        socket_timeout: float = 60.0,
        data_connect_timeout: float = 10.0,
        max_connections: int = 256,
        rate_limit: AddressLimit | None = None,
    ) -> None:
        """``rate_limit``: connections per client address (``limits.uploads_per_minute``)."""
        self.uploads = uploads
        self.host = host
        self._port = port
        users = _SlotUsers(uploads)
        data_ports = range(passive_ports[0], passive_ports[1] + 1) if passive_ports else None
        self._server = _UploadFtpServer(
            uploads,
            users,
            idle_timeout=idle_timeout,
            socket_timeout=socket_timeout,
            data_connect_timeout=data_connect_timeout,
            max_connections=max_connections,
            passive_address=passive_address,
            data_ports=data_ports,
            rate_limit=rate_limit,
        )
        users.server = self._server
        self._started = False

    @property
    def port(self) -> int:
        """The control port (the bound one when configured as 0)."""
        return self._port

    async def start(self) -> None:
        await self._server.start(host=self.host, port=self._port)
        self._port = self._server.address[1]
        self._started = True
        log.info("ftp_listening", host=self.host, port=self._port)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening and drop connections (uploads in progress are discarded).

        Control connections are closed first so their dispatchers end on their own; only
        those still running after ``grace`` seconds are cancelled.
        """
        if not self._started:
            return
        self._started = False
        server = self._server
        server.server.close()
        dispatchers: list[asyncio.Task[None]] = []
        for stream, connection in list(server.connections.items()):
            stream.close()
            dispatchers.append(connection._dispatcher)
        if dispatchers:
            await asyncio.wait(dispatchers, timeout=grace)
        await server.close()
