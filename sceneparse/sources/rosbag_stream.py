"""What is there of a bag that rosbags cannot open: a ROS 1 ``.bag`` or an MCAP file cut off
mid-file (a copy that stopped, a recorder killed before it wrote the index or the summary).

rosbags opens a ROS 1 bag through its index, at the end of the file, and an MCAP file through
its footer and summary, also at the end; a truncated file has neither. These readers read the
file from the start instead, record by record (ROS 1: chunks of connection and message-data
records; MCAP: the data section's schema, channel, message and chunk records), up to the last
complete record, and then raise :class:`TruncatedBagError` naming the file and where it breaks
off. They offer the part of rosbags' ``AnyReader`` that :class:`~sceneparse.sources.rosbag.RosbagSource`
uses: ``connections``, ``start_time``, ``end_time``, ``messages(connections)`` (recording order),
``deserialize(raw, msgtype)`` and ``close()``. Message types come from the definitions stored
in the bag, else from the default type store.
"""

from __future__ import annotations

import bz2
import logging
import re
import struct
import sys
from pathlib import Path

from sceneparse.errors import InputError

__all__ = ["TruncatedBagError", "StreamBagReader", "ChainedReader", "open_stream_reader"]

log = logging.getLogger(__name__)

MCAP_MAGIC = b"\x89MCAP0\r\n"
ROS1_MAGIC = b"#ROSBAG V2.0\n"


class TruncatedBagError(InputError):
    """The bag breaks off: the messages before the break were read."""


class _Connection:
    def __init__(self, cid: int, topic: str, msgtype: str, msgdef: str = "", fmt: str = "msg") -> None:
        self.id, self.topic, self.msgtype, self.msgdef, self.fmt = cid, topic, msgtype, msgdef, fmt
        self.msgcount = 0


def _ros2_name(msgtype: str) -> str:
    """``sensor_msgs/Image`` -> ``sensor_msgs/msg/Image`` (rosbags' names)."""
    parts = msgtype.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else msgtype


def _decompress(data: bytes, compression: str) -> bytes:
    if compression in ("", "none"):
        return data
    if compression == "lz4":
        from lz4.frame import decompress

        return decompress(data)
    if compression == "bz2":
        return bz2.decompress(data)
    if compression == "zstd":
        if sys.version_info >= (3, 14):
            from compression import zstd
        else:
            from backports import zstd  # rosbags' own dependency
        return zstd.decompress(data)
    raise InputError(f"chunk compression {compression!r} is not read")


class _Truncated(Exception):
    """Internal: fewer bytes than a record declares."""


class _Cursor:
    """Reads bytes (a decompressed chunk) or a file front to back; running short raises
    :class:`_Truncated`."""

    def __init__(self, data=None, file=None, size: int = 0) -> None:
        self.file = file
        self.data = memoryview(data) if data is not None else None
        self.size = len(self.data) if data is not None else size
        self._pos = 0

    @property
    def pos(self) -> int:
        return self.file.tell() if self.file is not None else self._pos

    def take(self, n: int):
        if n < 0 or self.pos + n > self.size:
            raise _Truncated(f"{n} bytes declared, {self.size - self.pos} left")
        if self.file is not None:
            return self.file.read(n)
        out = self.data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u(self, fmt: str) -> int:
        return struct.unpack_from("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return bytes(self.take(self.u("I"))).decode()

    def rest(self) -> bytes:
        return bytes(self.take(self.size - self.pos))

    def done(self) -> bool:
        return self.pos >= self.size


def _fields(buf) -> dict[str, bytes]:
    """The ``name=value`` fields of a ROS 1 record header."""
    cur, out = _Cursor(buf), {}
    while not cur.done():
        name, _, value = bytes(cur.take(cur.u("I"))).partition(b"=")
        out[name.decode()] = value
    return out


class StreamBagReader:
    """Reads a ROS 1 or MCAP bag front to back, up to its last complete record (see the module).

    Args:
        path: the ``.bag`` or ``.mcap`` file.
        typestore: the rosbags type store for types the bag does not define.
    """

    def __init__(self, path: str | Path, typestore) -> None:
        self.path = Path(path)
        self.default_typestore = typestore
        with open(self.path, "rb") as f:
            head = f.read(16)
        if head.startswith(MCAP_MAGIC):
            self.kind = "mcap"
        elif head.startswith(ROS1_MAGIC):
            self.kind = "ros1"
        else:
            raise InputError(f"{self.path}: neither a ROS 1 bag nor an MCAP file (its first bytes: {head[:13]!r})")
        self.size = self.path.stat().st_size
        self._conns: dict[int, _Connection] = {}
        self.start_time, self.end_time = 0, 0
        self._at = 0  # where the record being read starts
        self.broken: str | None = None
        first = last = None
        for conn, t, _ in self._records(None, counting=True):
            conn.msgcount += 1
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
        self.start_time, self.end_time = first or 0, last or 0
        self.connections = list(self._conns.values())
        self.typestore = self._build_typestore()
        self.messages_read = sum(c.msgcount for c in self.connections)
        if self.broken:
            log.info("%s: %s; %d complete messages before it", self.path, self.broken, self.messages_read)

    # the readers ----------------------------------------------------------------------------

    def _records(self, wanted: set[int] | None, counting: bool = False):
        """(connection, time ns, raw bytes) of every complete message, in recording order."""
        with open(self.path, "rb") as f:
            yield from self._read(_Cursor(file=f, size=self.size), wanted, counting)

    def _read(self, cur: _Cursor, wanted, counting: bool):
        try:
            if self.kind == "ros1":
                cur.take(len(ROS1_MAGIC))
                yield from self._ros1(cur, wanted)
            else:
                cur.take(len(MCAP_MAGIC))
                yield from self._mcap(cur, wanted)
        except (_Truncated, InputError, KeyError, IndexError, struct.error, UnicodeDecodeError, ValueError, OSError,
                RuntimeError) as err:  # fmt: skip
            # lz4, bz2 and zstd raise RuntimeError, OSError or ValueError for cut-off data
            if counting:
                why = str(err) if isinstance(err, _Truncated) else f"{type(err).__name__}: {err}"
                self.broken = f"breaks off in the record at byte {self._at} of {self.size} ({why})"
                return
            if self.broken:
                return
            raise TruncatedBagError(f"{self.path}: unreadable from byte {self._at} ({err})") from err
        if counting and self.kind == "mcap" and not self._mcap_ended:
            self.broken = f"ends at byte {self.size} without the MCAP data end record (cut off between records)"

    @staticmethod
    def _ros1_header(cur: _Cursor) -> dict[str, bytes]:
        return _fields(cur.take(cur.u("I")))

    def _ros1(self, cur: _Cursor, wanted):
        bag_header = self._ros1_header(cur)
        cur.take(cur.u("I"))  # its padding
        if bag_header.get("op") != b"\x03":
            raise _Truncated("no bag header record")
        while not cur.done():
            self._at = cur.pos
            header = self._ros1_header(cur)
            body = cur.take(cur.u("I"))
            op = header.get("op", b"\x00")[0]
            if op == 0x05:  # a chunk: the connection and message records it holds
                raw = _decompress(bytes(body), header["compression"].decode())
                yield from self._ros1_records(_Cursor(raw), wanted)
            elif op in (0x02, 0x07):  # an unchunked bag's records
                yield from self._ros1_record(header, body, wanted)
            # 0x04 index data, 0x06 chunk info: the index, not needed front to back

    def _ros1_records(self, cur: _Cursor, wanted):
        while not cur.done():
            header = self._ros1_header(cur)
            yield from self._ros1_record(header, cur.take(cur.u("I")), wanted)

    def _ros1_record(self, header, body, wanted):
        op = header.get("op", b"\x00")[0]
        if op == 0x07:
            cid = struct.unpack("<I", header["conn"])[0]
            if cid not in self._conns:
                info = _fields(body)
                self._conns[cid] = _Connection(cid, header["topic"].decode(), _ros2_name(info["type"].decode()),
                                               info.get("message_definition", b"").decode(), "msg")  # fmt: skip
        elif op == 0x02:
            cid = struct.unpack("<I", header["conn"])[0]
            sec, nsec = struct.unpack("<II", header["time"])
            if cid in self._conns and (wanted is None or cid in wanted):
                yield self._conns[cid], sec * 1_000_000_000 + nsec, bytes(body)

    def _mcap(self, cur: _Cursor, wanted):
        self._mcap_ended = False
        self._schemas: dict[int, tuple[str, str, str]] = getattr(self, "_schemas", {})
        while not cur.done():
            self._at = cur.pos
            op = cur.u("B")
            body = _Cursor(cur.take(cur.u("Q")))
            if op == 0x0F:  # data end: the summary follows
                self._mcap_ended = True
                return
            if op == 0x06:  # a chunk
                body.take(16)  # start and end time
                size, _crc = body.u("Q"), body.u("I")
                compression = body.string()
                raw = _decompress(bytes(body.take(body.u("Q"))), compression)
                if len(raw) != size:
                    raise _Truncated(f"a chunk of {len(raw)} bytes, {size} declared")
                inner = _Cursor(raw)
                while not inner.done():
                    iop = inner.u("B")
                    yield from self._mcap_record(iop, _Cursor(inner.take(inner.u("Q"))), wanted)
            else:
                yield from self._mcap_record(op, body, wanted)

    def _mcap_record(self, op: int, body: _Cursor, wanted):
        if op == 0x03:  # schema
            sid = body.u("H")
            name, encoding = body.string(), body.string()
            self._schemas[sid] = (name, encoding, bytes(body.take(body.u("I"))).decode())
        elif op == 0x04:  # channel
            cid, sid = body.u("H"), body.u("H")
            topic = body.string()
            body.string()  # message encoding (cdr)
            if cid not in self._conns:
                name, encoding, text = self._schemas.get(sid, ("", "", ""))
                self._conns[cid] = _Connection(cid, topic, name, text, "idl" if "idl" in encoding else "msg")
        elif op == 0x05:  # message
            cid = body.u("H")
            body.take(4)  # sequence
            log_time = body.u("Q")
            body.take(8)  # publish time
            if cid in self._conns and (wanted is None or cid in wanted):
                yield self._conns[cid], log_time, body.rest()

    # AnyReader's interface ------------------------------------------------------------------

    def _build_typestore(self):
        from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

        types = dict(self.default_typestore.fielddefs)
        for conn in self.connections:
            if not conn.msgdef:
                continue
            try:
                if conn.fmt == "idl":
                    types.update(get_types_from_idl(conn.msgdef))
                else:
                    types.update(get_types_from_msg(conn.msgdef, conn.msgtype))
            except Exception as err:  # a definition rosbags cannot parse: the default store's
                log.debug("%s: %s: %s", self.path, conn.msgtype, err)
        store = get_typestore(Stores.EMPTY)
        store.register(types)
        return store

    def messages(self, connections=()):
        """(connection, time ns, raw bytes) in recording order; at the break, after the last
        complete message, :class:`TruncatedBagError`."""
        wanted = {c.id for c in connections} if connections else None
        yield from self._records(wanted)
        if self.broken:
            raise TruncatedBagError(f"{self.path}: the file {self.broken}")

    def deserialize(self, raw: bytes, msgtype: str):
        if self.kind == "ros1":
            return self.typestore.deserialize_ros1(raw, msgtype)
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        pass


class ChainedReader:
    """The files of a split recording (``bag_0.mcap``, ``bag_1.mcap``, ...), each a
    :class:`StreamBagReader`, read one after the other as one bag: connections joined by topic and
    type; a file that breaks off ends the messages there."""

    def __init__(self, readers: list[StreamBagReader]) -> None:
        self.readers = readers
        joined: dict[tuple[str, str], _Connection] = {}
        self._outer: list[dict[int, tuple]] = []  # per reader: id(its connection) -> (it, the joined one)
        for reader in readers:
            outer = {}
            for conn in reader.connections:
                key = (conn.topic, conn.msgtype)
                if key not in joined:
                    joined[key] = _Connection(len(joined), conn.topic, conn.msgtype, conn.msgdef, conn.fmt)
                joined[key].msgcount += conn.msgcount
                outer[id(conn)] = (conn, joined[key])
            self._outer.append(outer)
        self.connections = list(joined.values())
        self.start_time = min(r.start_time for r in readers)
        self.end_time = max(r.end_time for r in readers)
        self.messages_read = sum(r.messages_read for r in readers)
        self.broken = next((f"{r.path.name} {r.broken}" for r in readers if r.broken), None)

    def messages(self, connections=()):
        wanted = {id(c) for c in connections} if connections else None
        for reader, outer in zip(self.readers, self._outer):
            mine = [inner for inner, joined in outer.values() if wanted is None or id(joined) in wanted]
            if not mine:
                continue
            for conn, t, raw in reader.messages(mine):
                yield outer[id(conn)][1], t, raw

    def deserialize(self, raw: bytes, msgtype: str):
        reader = next((r for r in self.readers if msgtype in r.typestore.types), self.readers[0])
        return reader.deserialize(raw, msgtype)

    def close(self) -> None:
        pass


def _split_order(paths) -> list[Path]:
    """Files in recording order: by the numbers in their names (``bag_2`` before ``bag_10``)."""
    return sorted(paths, key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)])


def open_stream_reader(path: Path, typestore) -> StreamBagReader | ChainedReader | None:
    """A :class:`StreamBagReader` for the ROS 1 or MCAP file of ``path`` (a file, or a ROS 2 bag
    folder with one ``.mcap``; with several, the files of a split recording, a :class:`ChainedReader`
    of them), or None where there is none or it holds no complete message."""
    files = [path] if path.is_file() else _split_order(path.glob("*.mcap"))
    if not files or files[0].suffix.lower() not in (".bag", ".mcap"):
        return None
    readers = []
    for file in files:
        try:
            readers.append(StreamBagReader(file, typestore))
        except (InputError, OSError) as err:
            log.debug("%s: %s", file, err)
            break
        if readers[-1].broken:  # the recording breaks off here: the files after it are not read
            break
    readers = [r for r in readers if r.messages_read]
    if not readers:
        return None
    return readers[0] if len(readers) == 1 else ChainedReader(readers)
