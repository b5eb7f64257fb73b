"""The MQTT topic scheme: ``{prefix}/{topic}/{station_id}/{kind}``.

``topic`` is the notice's :class:`~csms.bus.Topic` (``station``, ``fault``, ``run``,
``command``, ``ticket``, ``report``, ``log``) and ``kind`` what happened (``status``,
``reported``, ``step``...). Station ids are OCPP identities chosen by whoever installs the
charger: they may contain ``/`` (a level separator in MQTT), ``+`` and ``#`` (wildcards), NUL
(forbidden in topics) or non-ASCII text. Each variable level is therefore percent-encoded
(RFC 3986, UTF-8) so that it is exactly one level made of ``A-Z a-z 0-9 - . _ ~ %``;
:func:`decode_level` gives the id back. Notices without a station use the level ``-``
(a station really named ``-`` is encoded ``%2D``).

Besides the notices:

- ``{prefix}/station/{station_id}/online``: ``true`` / ``false``, retained (the station's
  connection as last seen by this node);
- ``{prefix}/node/{node_id}/online``: ``true`` / ``false``, retained; ``false`` is also the
  last will the broker publishes when this node vanishes without disconnecting.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from csms.bus import Notice
from csms.settings import SettingsError

NO_STATION = "-"
"""The station level of notices that are about no particular station."""


def encode_level(value: str) -> str:
    """``value`` as one safe topic level (percent-encoded UTF-8; never ``/ + #`` or NUL)."""
    if value == NO_STATION:
        return "%2D"
    return quote(value, safe="", errors="surrogatepass")


def decode_level(level: str) -> str:
    """The original value of a level made by :func:`encode_level`."""
    return unquote(level, errors="surrogatepass")


def check_prefix(prefix: str) -> str:
    """The configured prefix without surrounding ``/``; refuses wildcards, NUL, ``$`` topics
    and an empty prefix (:class:`~csms.settings.SettingsError`)."""
    cleaned = prefix.strip("/")
    if not cleaned or any(char in cleaned for char in "+#\x00") or cleaned.startswith("$"):
        raise SettingsError(
            f"mqtt.topic_prefix {prefix!r}: use one or more topic levels without '+', '#', "
            "NUL or a leading '$' (e.g. 'csms' or 'site-a/csms')"
        )
    return cleaned


def station_level(station_id: str | None) -> str:
    """The station level of a topic: the encoded id, or ``-`` for none."""
    return NO_STATION if station_id is None else encode_level(station_id)


def notice_topic(prefix: str, notice: Notice) -> str:
    """``{prefix}/{topic}/{station}/{kind}``, e.g. ``csms/fault/CP-1/reported``."""
    return "/".join((prefix, notice.topic.value, station_level(notice.station_id),
                     encode_level(notice.kind)))


def station_online_topic(prefix: str, station_id: str) -> str:
    """``{prefix}/station/{station}/online`` (retained ``true`` / ``false``)."""
    return f"{prefix}/station/{encode_level(station_id)}/online"


def node_online_topic(prefix: str, node_id: str) -> str:
    """``{prefix}/node/{node}/online`` (retained ``true`` / ``false``; the last will)."""
    return f"{prefix}/node/{encode_level(node_id)}/online"
