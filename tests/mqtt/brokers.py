"""Real Mosquitto for the MQTT tests: the system broker on 127.0.0.1:1883 (started by CI; the
tests fail when it is unreachable) and private brokers started and stopped by a test, plus a
recording subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

SYSTEM_BROKER_PORT = 1883
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_listening(port: int, timeout: float = 5.0) -> None:
    """Return once something accepts connections on ``port``; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            assert asyncio.get_running_loop().time() < deadline, f"nothing listens on {port}"
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


class PrivateBroker:
    """A Mosquitto process of the test's own, with persistence, that the test may restart."""

    def __init__(self, directory: Path, users: dict[str, str] | None = None) -> None:
        """``users``: name -> password; then anonymous clients are refused."""
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if users:
            passwords = directory / "passwords"
            passwords.touch()
            for name, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, password],
                               check=True, capture_output=True)
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        self.config.write_text(
            f"listener {self.port} {HOST}\n"
            f"{access}"
            # Started as root, Mosquitto switches to the user "mosquitto", which may not
            # write the test's directory: stay who we are (ignored when not root).
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            f"log_dest file {directory}/mosquitto.log\n"
            "max_queued_messages 10000\n"
        )
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start Mosquitto (again, on the same port and persistence file)."""
        assert self.process is None, "already running"
        self.process = await asyncio.create_subprocess_exec(
            "mosquitto", "-c", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        self.starts += 1
        await wait_listening(self.port)

    async def stop(self) -> None:
        """SIGTERM (Mosquitto saves its sessions and queued messages) and wait for the exit."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    def log(self) -> str:
        """The broker's log (for failure messages)."""
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass(frozen=True)
class Received:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """Records every message under a topic filter, at QoS 1.

    ``persistent``: a fixed client id and ``clean_session=False``, so that the broker keeps
    the subscription and queues messages while the subscriber or the broker is away; the
    subscriber reconnects by itself (and subscribes only on its first connection, so that the
    retained messages are not delivered again).
    """

    def __init__(self, port: int, topic_filter: str, *, client_id: str | None = None,
                 persistent: bool = False, username: str | None = None,
                 password: str | None = None) -> None:
        assert not persistent or client_id, "a persistent session needs a fixed client id"
        self.port = port
        self.username = username
        self.password = password
        self.topic_filter = topic_filter
        self.client_id = client_id
        self.persistent = persistent
        self.messages: list[Received] = []
        self.connections = 0
        self._subscribed = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 5.0) -> None:
        """Connect and subscribe; raise when the broker is unreachable."""
        self._task = asyncio.create_task(self._run())
        subscribed = asyncio.create_task(self._subscribed.wait())
        done, _ = await asyncio.wait({self._task, subscribed}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        subscribed.cancel()
        if self._task in done:
            self._task.result()  # the connection error
        assert self._subscribed.is_set(), f"could not subscribe on port {self.port}"

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with aiomqtt.Client(HOST, self.port, identifier=self.client_id,
                                          clean_session=not self.persistent,
                                          username=self.username,
                                          password=self.password) as client:
                    self.connections += 1
                    if not self._subscribed.is_set() or not self.persistent:
                        await client.subscribe(self.topic_filter, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append(Received(
                            message.topic.value, payload, message.retain, message.qos))
            except aiomqtt.MqttError:
                if not self._subscribed.is_set():
                    raise
                await asyncio.sleep(0.05)

    def on(self, topic: str) -> list[Received]:
        """The messages received on exactly ``topic``."""
        return [m for m in self.messages if m.topic == topic]

    def on_kind(self, kind: str) -> list[Received]:
        """The messages whose topic ends with ``/{kind}``."""
        return [m for m in self.messages if m.topic.endswith(f"/{kind}")]

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]


async def clear_retained(port: int, topics: set[str]) -> None:
    """Delete retained messages a test left on a shared broker."""
    if not topics:
        return
    async with aiomqtt.Client(HOST, port) as client:
        for topic in sorted(topics):
            await client.publish(topic, b"", qos=1, retain=True)
