"""A fast reader (and a tiny writer) for TensorBoard event files.

TensorBoard's own readers decode every record into protobuf objects in Python and are slow
(tens of microseconds a scalar). This module reads the TFRecord framing and the ``Event`` wire
format by hand, and decodes whole groups of same-shaped records at once with numpy: records of
one length that share every byte except the wall time, the step and the value are the common
case (one ``add_scalar`` tag), so one record is decoded field by field and the rest are checked
against it and sliced out column-wise. Anything else falls back to a per-record decoder.

Nothing here imports tensorboard or tensorflow. The reader never raises on a damaged file: a
truncated or corrupt tail ends the read with a one-line warning and keeps every record before it.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from watchdog.errors import InputError, read_input, read_input_range
from watchdog.signals import normalize_key

__all__ = [
    "EVENT_FILE_GLOB",
    "EventFileTail",
    "ReadResult",
    "ScalarEvent",
    "ScalarWriter",
    "Series",
    "crc32c",
    "find_event_files",
    "is_hparams_session",
    "masked_crc32c",
    "read_run_scalars",
    "read_scalars",
    "read_scalars_bytes",
]

EVENT_FILE_GLOB = "events.out.tfevents.*"

_U64 = struct.Struct("<Q").unpack_from
_U32 = struct.Struct("<I").unpack_from
_F64 = struct.Struct("<d").unpack_from
_F32 = struct.Struct("<f").unpack_from

_TWO64 = 1 << 64
_TWO63 = 1 << 63

# ---------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), masked as TFRecord does.
# ---------------------------------------------------------------------------------------------


def _make_crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)

try:  # pragma: no cover - optional native implementations
    import google_crc32c as _gcrc  # type: ignore[import-not-found]

    def _native_crc(data: bytes) -> int:
        return int(_gcrc.value(bytes(data)))

except ImportError:  # pragma: no cover
    try:
        import crc32c as _ccrc  # type: ignore[import-not-found]

        def _native_crc(data: bytes) -> int:
            return int(_ccrc.crc32c(bytes(data)))

    except ImportError:
        _native_crc = None  # type: ignore[assignment]


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (native module when importable, else a table-driven loop)."""
    if _native_crc is not None:
        return _native_crc(data)
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C TFRecord stores after the length and after the data."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _masked_crc_rows(rows: np.ndarray) -> np.ndarray:
    """Masked CRC-32C of every row of a (K, L) uint8 matrix, vectorised over the rows."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    table = _CRC_TABLE_NP
    for j in range(rows.shape[1]):
        crc = table[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)


def _header_ok(buf: bytes, pos: int) -> bool:
    return masked_crc32c(buf[pos : pos + 8]) == _U32(buf, pos + 8)[0]


def _data_ok(buf: bytes, pos: int, n: int) -> bool:
    return masked_crc32c(buf[pos + 12 : pos + 12 + n]) == _U32(buf, pos + 12 + n)[0]


# ---------------------------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------------------------


@dataclass
class ScalarEvent:
    """One scalar point."""

    step: int
    wall_time: float
    value: float


@dataclass
class Series:
    """All points of one tag, in file order (not deduplicated; step restarts are kept)."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def events(self) -> list[ScalarEvent]:
        """The points as :class:`ScalarEvent` objects (slow; for small series and tests)."""
        return [
            ScalarEvent(int(s), float(w), float(v))
            for s, v, w in zip(self.steps.tolist(), self.values.tolist(), self.wall_times.tolist())
        ]

    @staticmethod
    def empty() -> "Series":
        return Series(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64))

    @staticmethod
    def concat(parts: Iterable["Series"]) -> "Series":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Series.empty()
        if len(parts) == 1:
            return parts[0]
        return Series(
            np.concatenate([p.steps for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.wall_times for p in parts]),
        )


@dataclass
class ReadResult:
    """What :func:`read_scalars` / :func:`read_run_scalars` found."""

    scalars: dict[str, Series] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    records_read: int = 0
    bytes_read: int = 0
    files: list[str] = field(default_factory=list)
    first_wall_time: float | None = None  # wall time of the file's first record (file_version)
    sessions: list[float] = field(default_factory=list)  # start times of the processes that wrote the run
    damaged: list[str] = field(default_factory=list)  # files read up to a corrupt record, the rest of them lost


# ---------------------------------------------------------------------------------------------
# Wire-format decoding
# ---------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A record whose bytes are not a well-formed Event."""


def _fixed_values(buf, p: int, q: int, wire: int, single_wire: int, size: int, unpack, out: list, name: str) -> int:
    """One repeated fixed-size field (float_val / double_val), packed or not: append (value, offset)."""
    if wire == single_wire:
        out.append((unpack(buf, p)[0], p))
        return p + size
    if wire != 2:
        raise _Bad(f"{name} wire")
    n, p = _uvarint(buf, p)
    e = p + n
    if e > q or n % size:
        raise _Bad(f"packed {name}")
    for r in range(p, e, size):
        out.append((unpack(buf, r)[0], r))
    return e


def _uvarint(buf: bytes, p: int) -> tuple[int, int]:
    """Unsigned varint at ``p`` -> (value, next position). At most 10 bytes."""
    result = 0
    shift = 0
    while True:
        b = buf[p]
        p += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, p
        shift += 7
        if shift >= 70:
            raise _Bad("varint too long")


def _svarint(buf: bytes, p: int) -> tuple[int, int]:
    """int64/int32 varint (two's complement) -> (value, next position)."""
    v, p = _uvarint(buf, p)
    if v >= _TWO63:
        v -= _TWO64
    return v, p


def _skip(buf: bytes, p: int, wire: int) -> int:
    """Skip one field payload of wire type ``wire`` starting at ``p``."""
    if wire == 0:
        for _ in range(10):
            b = buf[p]
            p += 1
            if b < 0x80:
                return p
        raise _Bad("varint too long")
    if wire == 1:
        return p + 8
    if wire == 2:
        n, p = _uvarint(buf, p)
        return p + n
    if wire == 5:
        return p + 4
    raise _Bad(f"wire type {wire}")


def _key(buf: bytes, p: int) -> tuple[int, int]:
    b = buf[p]
    if b < 0x80:
        return b, p + 1
    return _uvarint(buf, p)


# value kinds a template can slice out column-wise
_K_F32 = 1
_K_F64 = 2

# TensorProto dtype -> (struct format, itemsize) for tensor_content
_CONTENT = {
    1: ("<f", 4),  # DT_FLOAT
    2: ("<d", 8),  # DT_DOUBLE
    3: ("<i", 4),  # DT_INT32
    4: ("<B", 1),  # DT_UINT8
    5: ("<h", 2),  # DT_INT16
    6: ("<b", 1),  # DT_INT8
    9: ("<q", 8),  # DT_INT64
    10: ("<?", 1),  # DT_BOOL
    14: ("bf16", 2),  # DT_BFLOAT16
    17: ("<H", 2),  # DT_UINT16
    19: ("<e", 2),  # DT_HALF
    22: ("<I", 4),  # DT_UINT32
    23: ("<Q", 8),  # DT_UINT64
}
_INT_VAL_DTYPES = (3, 4, 5, 6, 17)


def _half_bits(bits: int, dtype: int) -> float:
    bits &= 0xFFFF
    if dtype == 14:
        return struct.unpack("<f", struct.pack("<I", bits << 16))[0]
    return struct.unpack("<e", struct.pack("<H", bits))[0]


def _tensor_scalar(buf: bytes, p: int, q: int) -> tuple[float, int, int] | None:
    """A TensorProto in buf[p:q] holding exactly one number -> (value, payload offset, kind).

    offset/kind locate a float32/float64 payload for the column-wise fast path (-1/0 otherwise).
    Returns None for anything that is not a one-element numeric tensor (strings, histograms...).
    """
    dtype = 0
    n_elems = 1
    content = None  # (start, end)
    floats: list[tuple[float, int]] = []
    doubles: list[tuple[float, int]] = []
    ints: list[int] = []
    int64s: list[int] = []
    halfs: list[int] = []
    uints: list[int] = []
    bools: list[int] = []
    while p < q:
        key, p = _key(buf, p)
        fnum = key >> 3
        wire = key & 7
        if fnum == 1 and wire == 0:
            dtype, p = _uvarint(buf, p)
        elif fnum == 2 and wire == 2:
            n, p = _uvarint(buf, p)
            e = p + n
            if e > q:
                raise _Bad("shape overruns tensor")
            r = p
            while r < e:
                k2, r = _key(buf, r)
                if k2 == 0x12:  # dim
                    m, r = _uvarint(buf, r)
                    de = r + m
                    size = 0
                    while r < de:
                        k3, r = _key(buf, r)
                        if k3 == 0x08:
                            size, r = _svarint(buf, r)
                        else:
                            r = _skip(buf, r, k3 & 7)
                    if r != de:
                        raise _Bad("dim overrun")
                    n_elems *= size
                elif k2 == 0x18:  # unknown_rank
                    ur, r = _uvarint(buf, r)
                    if ur:
                        n_elems = -1 if n_elems >= 0 else n_elems
                else:
                    r = _skip(buf, r, k2 & 7)
            if r != e:
                raise _Bad("shape overrun")
            p = e
        elif fnum == 4 and wire == 2:
            n, p = _uvarint(buf, p)
            content = (p, p + n)
            p += n
        elif fnum == 5:
            p = _fixed_values(buf, p, q, wire, 5, 4, _F32, floats, "float_val")
        elif fnum == 6:
            p = _fixed_values(buf, p, q, wire, 1, 8, _F64, doubles, "double_val")
        elif fnum in (7, 10, 11, 13, 16, 17):
            target = {7: ints, 10: int64s, 11: bools, 13: halfs, 16: uints, 17: uints}[fnum]
            signed = fnum in (7, 10)
            if wire == 0:
                v, p = _svarint(buf, p) if signed else _uvarint(buf, p)
                target.append(v)
            elif wire == 2:
                n, p = _uvarint(buf, p)
                e = p + n
                if e > q:
                    raise _Bad("packed varints")
                while p < e:
                    v, p = _svarint(buf, p) if signed else _uvarint(buf, p)
                    target.append(v)
                if p != e:
                    raise _Bad("packed varint overrun")
            else:
                raise _Bad("varint list wire")
        else:
            p = _skip(buf, p, wire)
    if p != q:
        raise _Bad("tensor overrun")
    if n_elems != 1:
        return None
    if content is not None and content[1] > content[0]:
        cs, ce = content
        spec = _CONTENT.get(dtype)
        if spec is None or ce - cs != spec[1]:
            return None
        fmt = spec[0]
        if fmt == "bf16":
            return _half_bits(struct.unpack_from("<H", buf, cs)[0], 14), -1, 0
        v = struct.unpack_from(fmt, buf, cs)[0]
        if dtype == 1:
            return float(v), cs, _K_F32
        if dtype == 2:
            return float(v), cs, _K_F64
        return float(v), -1, 0
    if dtype == 1 or (dtype == 0 and floats):
        if floats:
            return float(floats[0][0]), floats[0][1], _K_F32
        return None
    if dtype == 2 or (dtype == 0 and doubles):
        if doubles:
            return float(doubles[0][0]), doubles[0][1], _K_F64
        return None
    if dtype in _INT_VAL_DTYPES or (dtype == 0 and ints):
        return (float(ints[0]), -1, 0) if ints else None
    if dtype == 9 or (dtype == 0 and int64s):
        return (float(int64s[0]), -1, 0) if int64s else None
    if dtype in (19, 14):
        return (_half_bits(halfs[0], dtype), -1, 0) if halfs else None
    if dtype in (22, 23):
        return (float(uints[0]), -1, 0) if uints else None
    if dtype == 10:
        return (float(bool(bools[0])), -1, 0) if bools else None
    return None


def _plugin_name(buf: bytes, p: int, q: int) -> str:
    """SummaryMetadata in buf[p:q] -> plugin_data.plugin_name, or "" (data_class != scalar -> '?')."""
    name = ""
    data_class = 0
    while p < q:
        key, p = _key(buf, p)
        if key == 0x0A:  # plugin_data
            n, p = _uvarint(buf, p)
            e = p + n
            r = p
            while r < e:
                k2, r = _key(buf, r)
                if k2 == 0x0A:
                    m, r = _uvarint(buf, r)
                    name = buf[r : r + m].decode("utf-8", "replace")
                    r += m
                else:
                    r = _skip(buf, r, k2 & 7)
            if r != e:
                raise _Bad("plugin_data overrun")
            p = e
        elif key == 0x20:
            data_class, p = _uvarint(buf, p)
        else:
            p = _skip(buf, p, key & 7)
    if p != q:
        raise _Bad("metadata overrun")
    if not name and data_class not in (0, 1):
        return "?"
    return name


def _decode_event(buf: bytes, s: int, e: int):
    """Decode the Event in buf[s:e].

    Returns (wall, wall_off, step, step_off, step_len, values) where values is a list of
    (tag_bytes, value, value_off, value_kind, plugin_name_or_None). Offsets are absolute.
    Raises _Bad (or IndexError/struct.error) on malformed bytes.
    """
    wall = 0.0
    wall_off = -1
    step = 0
    step_off = -1
    step_len = 0
    summaries = None
    p = s
    while p < e:
        key = buf[p]
        p += 1
        if key == 0x09:
            wall = _F64(buf, p)[0]
            wall_off = p
            p += 8
        elif key == 0x10:
            step_off = p
            b = buf[p]
            if b < 0x80:
                step = b
                p += 1
            else:
                step, p = _svarint(buf, p)
            step_len = p - step_off
        elif key == 0x2A:
            b = buf[p]
            if b < 0x80:
                p += 1
                n = b
            else:
                n, p = _uvarint(buf, p)
            if summaries is None:
                summaries = [(p, p + n)]
            else:
                summaries.append((p, p + n))
            p += n
        else:
            if key >= 0x80:
                key, p = _uvarint(buf, p - 1)
            p = _skip(buf, p, key & 7)
    if p != e:
        raise _Bad("event overrun")
    values = []
    if summaries is None:
        return wall, wall_off, step, step_off, step_len, values
    for ss, se in summaries:
        q = ss
        while q < se:
            key, q = _key(buf, q)
            if key != 0x0A:
                q = _skip(buf, q, key & 7)
                continue
            n, q = _uvarint(buf, q)
            ve = q + n
            if ve > se:
                raise _Bad("value overruns summary")
            tag = b""
            val = None
            voff = -1
            vkind = 0
            plugin = None
            r = q
            while r < ve:
                k = buf[r]
                r += 1
                if k == 0x0A:
                    m, r = _uvarint(buf, r)
                    tag = buf[r : r + m]
                    r += m
                elif k == 0x15:
                    val = _F32(buf, r)[0]
                    voff = r
                    vkind = _K_F32
                    r += 4
                elif k == 0x42:
                    m, r = _uvarint(buf, r)
                    if r + m > ve:
                        raise _Bad("tensor overruns value")
                    got = _tensor_scalar(buf, r, r + m)
                    if got is None:
                        val = None
                        voff = -1
                        vkind = 0
                    else:
                        val, voff, vkind = got
                    r += m
                elif k == 0x4A:
                    m, r = _uvarint(buf, r)
                    if r + m > ve:
                        raise _Bad("metadata overruns value")
                    plugin = _plugin_name(buf, r, r + m)
                    r += m
                elif k in (0x22, 0x2A, 0x32, 0x1A, 0x3A):  # image, histo, audio, old histo, node_name
                    m, r = _uvarint(buf, r)
                    r += m
                    if k != 0x3A:
                        val = None
                        voff = -1
                        vkind = 0
                else:
                    if k >= 0x80:
                        k, r = _uvarint(buf, r - 1)
                    r = _skip(buf, r, k & 7)
            if r != ve:
                raise _Bad("value overrun")
            q = ve
            if val is not None or plugin is not None:
                values.append((tag, val, voff, vkind, plugin))
        if q != se:
            raise _Bad("summary overrun")
    return wall, wall_off, step, step_off, step_len, values


# ---------------------------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------------------------


def _frame(buf: bytes, pos: int, end: int):
    """Locate the complete records in buf[pos:end].

    Returns (offsets int64[], lengths int64[], stop_pos, stop_kind, stop_len) where stop_kind is
    None (clean end), "truncated" (the last record is incomplete) or "bad_length" (its length
    header fails its checksum and points past the end of the data, or is 0: zero-filled bytes).
    """
    o_chunks: list[np.ndarray] = []
    n_chunks: list[np.ndarray] = []
    offs: list[int] = []
    lens: list[int] = []
    unpack = _U64
    prev = -1
    same = 0
    need = 2  # consecutive equal lengths before trying a vectorised run
    kind = None
    stop_len = 0
    while True:
        rem = end - pos
        if rem < 12:
            if rem > 0:
                kind = "truncated"
            break
        n = unpack(buf, pos)[0]
        if n > rem - 16 or (n == 0 and not _header_ok(buf, pos)):  # no writer writes an empty Event: zeros
            kind = "truncated" if n and _header_ok(buf, pos) else "bad_length"  # (a file's length ahead of its bytes)
            stop_len = n
            break
        step = n + 16
        if n == prev:
            same += 1
            if same >= need and rem // step >= 32:
                if offs:
                    o_chunks.append(np.array(offs, dtype=np.int64))
                    n_chunks.append(np.array(lens, dtype=np.int64))
                    offs = []
                    lens = []
                kmax = rem // step
                got = 0
                width = 64
                while got < kmax:
                    k = min(width, kmax - got)
                    view = np.ndarray((k,), dtype="<u8", buffer=buf, offset=pos + got * step, strides=(step,))
                    bad = np.flatnonzero(view != n)
                    if bad.size:
                        got += int(bad[0])
                        break
                    got += k
                    width *= 4
                if got:
                    o_chunks.append(pos + step * np.arange(got, dtype=np.int64))
                    n_chunks.append(np.full(got, n, dtype=np.int64))
                    pos += got * step
                need = 2 if got >= 32 else min(need * 2, 4096)
                same = 0
                prev = n
                continue
        else:
            same = 0
        offs.append(pos)
        lens.append(n)
        prev = n
        pos += step
    if offs or not o_chunks:
        o_chunks.append(np.array(offs, dtype=np.int64))
        n_chunks.append(np.array(lens, dtype=np.int64))
    return np.concatenate(o_chunks), np.concatenate(n_chunks), pos, kind, stop_len


def _rows(u8: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """(K, width) uint8 matrix of u8[starts[i] : starts[i] + width] (a view when evenly spaced)."""
    k = starts.shape[0]
    if k == 0:
        return np.zeros((0, width), np.uint8)
    if k == 1:
        s0 = int(starts[0])
        return u8[s0 : s0 + width].reshape(1, width)
    d = int(starts[1] - starts[0])
    if d > 0 and int(starts[-1] - starts[0]) == d * (k - 1) and (k == 2 or np.all(np.diff(starts) == d)):
        base = u8[int(starts[0]) :]
        return np.lib.stride_tricks.as_strided(base, shape=(k, width), strides=(d, 1), writeable=False)
    return u8[starts[:, None] + np.arange(width, dtype=np.int64)]


# ---------------------------------------------------------------------------------------------
# Decoding a buffer
# ---------------------------------------------------------------------------------------------


class _Acc:
    """Per-tag accumulator: numpy chunks from templates plus lists from the per-record path."""

    __slots__ = ("chunks", "idx", "steps", "vals", "walls", "plugin", "plugin_idx")

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.idx: list[int] = []
        self.steps: list[int] = []
        self.vals: list[float] = []
        self.walls: list[float] = []
        self.plugin: str | None = None
        self.plugin_idx = -1

    def note_plugin(self, plugin: str | None, idx: int) -> None:
        if plugin is not None and (self.plugin_idx < 0 or idx < self.plugin_idx):
            self.plugin = plugin
            self.plugin_idx = idx

    def build(self, limit: int) -> Series | None:
        if self.plugin not in (None, "", "scalars"):
            return None
        parts = list(self.chunks)
        if self.idx:
            parts.append(
                (
                    np.array(self.idx, dtype=np.int64),
                    np.array(self.steps, dtype=np.int64),
                    np.array(self.vals, dtype=np.float64),
                    np.array(self.walls, dtype=np.float64),
                )
            )
        if not parts:
            return Series.empty()
        if len(parts) == 1:
            idx, st, va, wa = parts[0]
        else:
            idx = np.concatenate([p[0] for p in parts])
            st = np.concatenate([p[1] for p in parts])
            va = np.concatenate([p[2] for p in parts])
            wa = np.concatenate([p[3] for p in parts])
        if idx.size > 1 and not bool(np.all(idx[1:] >= idx[:-1])):
            order = np.argsort(idx, kind="stable")
            idx, st, va, wa = idx[order], st[order], va[order], wa[order]
        if limit >= 0 and idx.size and idx[-1] >= limit:
            keep = idx < limit
            st, va, wa = st[keep], va[keep], wa[keep]
        return Series(st, va, wa)


class _Decoded:
    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.records = 0  # complete, usable records consumed
        self.consumed = 0  # bytes consumed (relative to the buffer start given)
        self.problem: tuple[str, int, int] | None = None  # (kind, absolute offset, extra)
        self.skipped: list[int] = []  # offsets of valid-checksum records we could not decode
        self.first_wall: float | None = None


def _tag_str(tag: bytes) -> str:
    return tag.decode("utf-8", "replace")


def _decode_buffer(buf: bytes, pos: int, end: int, *, check_crc: bool, tag_filter) -> _Decoded:
    """Decode every complete record of buf[pos:end] (the core of all readers)."""
    out = _Decoded()
    offs, lens, stop_pos, stop_kind, stop_len = _frame(buf, pos, end)
    total = int(offs.shape[0])
    limit = total  # records with index >= limit are dropped
    stop: tuple[str, int, int] | None = None
    if stop_kind is not None:
        stop = (stop_kind, stop_pos, stop_len)
    u8 = np.frombuffer(buf, dtype=np.uint8)
    # every 8- and 4-byte little-endian word, at every byte offset (overlapping views, no copy)
    w8 = np.ndarray((max(len(buf) - 7, 0),), dtype="<u8", buffer=buf, strides=(1,))
    w4 = np.ndarray((max(len(buf) - 3, 0),), dtype="<u4", buffer=buf, strides=(1,))

    # group records by length
    if total:
        if lens.min() == lens.max():
            groups = [(int(lens[0]), np.arange(total, dtype=np.int64))]
        else:
            order = np.argsort(lens, kind="stable")
            sl = lens[order]
            cuts = np.flatnonzero(np.diff(sl)) + 1
            groups = [(int(lens[g[0]]), g) for g in np.split(order, cuts)]
    else:
        groups = []

    if check_crc and total:
        first_bad = total
        for n, idx in groups:
            starts = offs[idx]
            if idx.shape[0] >= 8 and n <= 4096:
                rows_per_chunk = max(1024, (1 << 22) // (n + 16))  # bound the gather's memory
                for c in range(0, int(idx.shape[0]), rows_per_chunk):
                    cst = starts[c : c + rows_per_chunk]
                    hdr = _rows(u8, cst, 12)
                    hcrc = _masked_crc_rows(hdr[:, :8])
                    hstored = w4[cst + 8]
                    dat = _rows(u8, cst + 12, n)
                    dcrc = _masked_crc_rows(dat)
                    dstored = w4[cst + 12 + n]
                    bad = np.flatnonzero((hcrc != hstored) | (dcrc != dstored))
                    if bad.size:
                        first_bad = min(first_bad, int(idx[c + int(bad[0])]))
                        break
            else:  # few records of this length, or records too large to be a scalar (images, histograms): their
                # data checksum is left out (a pure-Python CRC costs about 0.12 s a MiB: 1.1 s for a 9.4 MiB file of
                # 200 images), their length header's is checked (a wrong length would misread every record after it)
                for i in idx.tolist():
                    if i >= first_bad:
                        break
                    o = int(offs[i])
                    if not (_header_ok(buf, o) and (n > 4096 or _data_ok(buf, o, n))):
                        first_bad = min(first_bad, i)
                        break
        if first_bad < total:
            limit = first_bad
            stop = ("crc", int(offs[first_bad]), 0)
            groups = [(n, idx[idx < limit]) for n, idx in groups]

    accs: dict[bytes, _Acc | None] = {}

    def acc_for(tag: bytes) -> _Acc | None:
        a = accs.get(tag, False)
        if a is False:
            name = _tag_str(tag)
            if tag_filter is None or name in tag_filter or normalize_key(name) in tag_filter:
                a = _Acc()
            else:
                a = None
            accs[tag] = a
        return a  # type: ignore[return-value]

    bad_stop = limit  # first undecodable record with a bad checksum

    def decode_one(i: int, n: int) -> bool:
        """Per-record path. Returns False when the record is corrupt (decoding must stop there)."""
        nonlocal bad_stop
        o = int(offs[i])
        s = o + 12
        try:
            wall, _, step, _, _, values = _decode_event(buf, s, s + n)
        except (_Bad, IndexError, struct.error, ValueError, OverflowError):
            if _header_ok(buf, o) and _data_ok(buf, o, n):
                out.skipped.append(o)
                return True
            bad_stop = min(bad_stop, i)
            return False
        if i == 0:
            out.first_wall = wall
        for tag, val, _, _, plugin in values:
            a = acc_for(tag)
            if a is None:
                continue
            a.note_plugin(plugin, i)
            if val is not None:
                a.idx.append(i)
                a.steps.append(step)
                a.vals.append(val)
                a.walls.append(wall)
        return True

    for n, idx in groups:
        k = int(idx.shape[0])
        if k == 0:
            continue
        if k < 16 or n > 2048 or n < 8:
            for i in idx.tolist():
                if i >= bad_stop:
                    break
                if not decode_one(i, n):
                    break
            continue
        remaining = idx
        poor = 0  # consecutive template attempts that matched few records
        while remaining.shape[0]:
            if poor >= 4 or remaining.shape[0] < 16:
                for i in remaining.tolist():
                    if i >= bad_stop:
                        break
                    if not decode_one(i, n):
                        break
                break
            i0 = int(remaining[0])
            s0 = int(offs[i0]) + 12
            try:
                wall0, woff, step0, soff, slen, values = _decode_event(buf, s0, s0 + n)
            except (_Bad, IndexError, struct.error, ValueError, OverflowError):
                values = None
            if not values or any(v[3] == 0 for v in values) or slen > 10:
                poor += 1
                if not decode_one(i0, n):
                    remaining = remaining[:0]
                    break
                remaining = remaining[1:]
                continue
            # template: which bytes must equal the first record's (mask 0xFF), which only in
            # their continuation bit (the step varint, 0x80), and which are payload (0x00)
            mask = np.full(n, 0xFF, dtype=np.uint8)
            if woff >= 0:
                mask[woff - s0 : woff - s0 + 8] = 0
            for _, _, voff, vkind, _ in values:
                mask[voff - s0 : voff - s0 + (4 if vkind == _K_F32 else 8)] = 0
            if soff >= 0:
                mask[soff - s0 : soff - s0 + slen] = 0x80
            # compare 8-byte words of every record with the template's, under the mask
            starts = offs[remaining] + 12
            tmpl = u8[s0 : s0 + n]
            match = np.ones(starts.shape[0], dtype=bool)
            word_pos = list(range(0, n - 7, 8))
            if n % 8:
                word_pos.append(n - 8)
            for wp in word_pos:
                mword = int.from_bytes(mask[wp : wp + 8].tobytes(), "little")
                if mword == 0:
                    continue
                tword = int.from_bytes(tmpl[wp : wp + 8].tobytes(), "little") & mword
                match &= (w8[starts + wp] & np.uint64(mword)) == np.uint64(tword)
            all_match = bool(match.all())
            sel = remaining if all_match else remaining[match]
            nsel = int(sel.shape[0])
            poor = poor + 1 if nsel < 16 else 0
            ss = starts if all_match else starts[match]
            sel64 = sel.astype(np.int64)
            w = st = None
            for tag, _, voff, vkind, plugin in values:
                a = acc_for(tag)
                if a is None:
                    continue
                a.note_plugin(plugin, i0)
                if w is None:
                    if woff >= 0:
                        w = w8[ss + (woff - s0)].view("<f8")
                    else:
                        w = np.zeros(nsel, np.float64)
                    if soff >= 0:
                        st = np.zeros(nsel, np.uint64)
                        for j in range(slen):
                            st |= (u8[ss + (soff - s0 + j)] & 0x7F).astype(np.uint64) << np.uint64(7 * j)
                        st = st.view(np.int64)
                    else:
                        st = np.zeros(nsel, np.int64)
                if vkind == _K_F32:
                    v = w4[ss + (voff - s0)].view("<f4").astype(np.float64)
                else:
                    v = w8[ss + (voff - s0)].view("<f8")
                a.chunks.append((sel64, st, v, w))
            if i0 == 0:
                out.first_wall = wall0
            remaining = remaining[:0] if all_match else remaining[~match]

    if bad_stop < limit:
        limit = bad_stop
        stop = ("corrupt", int(offs[bad_stop]), 0)
    out.records = limit
    end_pos = int(offs[limit]) if limit < total else stop_pos
    out.consumed = end_pos - pos
    out.problem = stop
    if out.first_wall is None and total and limit > 0:
        try:
            out.first_wall = _decode_event(buf, int(offs[0]) + 12, int(offs[0]) + 12 + int(lens[0]))[0]
        except Exception:
            pass
    for tag, a in accs.items():
        if a is None:
            continue
        ser = a.build(limit)
        if ser is None or not len(ser):
            continue
        name = _tag_str(tag)
        if name in out.series:  # two byte-strings decoding to the same text
            out.series[name] = Series.concat([out.series[name], ser])
        else:
            out.series[name] = ser
    out.skipped = sorted(o for o in out.skipped if o < end_pos)
    return out


def _problem_warning(path: str, problem: tuple[str, int, int], records: int, size: int) -> str:
    kind, off, extra = problem
    before = f"read {records} records before it"
    if kind == "truncated":
        return (
            f"{path}: truncated record at byte {off} (file ends mid-record; a run killed mid-write?)"
            f" - {before}"
        )
    if kind == "bad_length" and extra == 0:
        return (f"{path}: zero-filled bytes at byte {off} (the file's length ran ahead of its data: a crash, or a "
                f"network file system's write not there yet) - {before}; the rest is ignored")
    if kind == "bad_length":
        return (
            f"{path}: corrupt record length header at byte {off} (claims {extra} bytes, only"
            f" {max(size - off - 16, 0)} left, checksum mismatch) - {before}; the rest is ignored"
        )
    if kind == "crc":
        return f"{path}: record at byte {off} fails its CRC check (corrupt file) - {before}; the rest is ignored"
    return (
        f"{path}: corrupt record at byte {off} (not a valid Event and its checksum fails) - {before};"
        " the rest is ignored"
    )


def _read_bytes(path: Path) -> bytes:
    return read_input(path, what="event file", missing_hint="check the path or run directory",
                      directory_hint="use read_run_scalars for a run directory")


def read_scalars(path, *, check_crc: bool = True, tags=None) -> ReadResult:
    """Read every scalar of one event file, keyed by the tag as written in the file.

    ``tags`` (optional) keeps only these tags (raw or normalised names). Never raises on damaged
    content: reading stops at a truncated or corrupt record and a one-line warning says where. ``check_crc``
    (default on since session 18, about 0.1 s per million scalars more): a record whose checksums fail is
    corrupt; without it a flipped bit in a value was read as data (a NaN: a false "diverged").
    Raises :class:`InputError` only when the file cannot be opened.
    """
    p = Path(path)
    return read_scalars_bytes(_read_bytes(p), name=str(p), check_crc=check_crc, tags=tags)


def read_scalars_bytes(buf: bytes, *, name: str = "<bytes>", check_crc: bool = True, tags=None) -> ReadResult:
    """:func:`read_scalars` on the bytes of an event file already in memory (never raises)."""
    p = name
    buf = bytes(buf)
    tag_filter = None if tags is None else set(tags)
    dec = _decode_buffer(buf, 0, len(buf), check_crc=check_crc, tag_filter=tag_filter)
    res = ReadResult(
        scalars=dec.series,
        records_read=dec.records,
        bytes_read=dec.consumed,
        files=[str(p)],
        first_wall_time=dec.first_wall,
    )
    if dec.skipped:
        res.warnings.append(
            f"{p}: skipped {len(dec.skipped)} record(s) that are not valid Event protobufs though their"
            f" checksums match (first at byte {dec.skipped[0]}; written by an unknown tool?)"
        )
    if dec.problem is not None:
        res.warnings.append(_problem_warning(str(p), dec.problem, dec.records, len(buf)))
        if dec.problem[0] != "truncated":  # a torn last write is how a killed run ends; this lost what follows
            res.damaged.append(str(p))
    return res


# ---------------------------------------------------------------------------------------------
# Tailing a live file
# ---------------------------------------------------------------------------------------------


class FileTail:
    """What the reader of a file still being written keeps besides its place: ``warnings`` for whoever follows it,
    and the rule for a bad read. A bad record is only ``suspect`` (where it failed) until a poll ``SUSPECT_S`` later,
    or a ``final`` one (the writer is done), still finds it: then the file is ``broken`` and the reading stops (a
    network file system can show a file's new length before its bytes). An incomplete end (``torn``) waits for the
    rest; a ``final`` poll says it, once."""

    SUSPECT_S = 1.0

    def __init__(self, path):
        self.path = Path(path)
        self.warnings: list[str] = []
        self.broken = False
        self.suspect: int | None = None  # where a read failed its checks (corrupt if it still does later)
        self._suspect_since = 0.0
        self.torn = False
        self._torn_said = False

    @property
    def torn_unsaid(self) -> bool:
        """Its end is incomplete and not yet said (a ``final`` poll says it: a torn last write)."""
        return self.torn and not self._torn_said

    def _bad(self, at: int, final: bool, said) -> None:
        """A read failed its checks at ``at``: broken (``said()`` the warning) once it still does ``SUSPECT_S`` later."""
        if self.suspect != at:
            self.suspect, self._suspect_since = at, time.monotonic()
        if final or time.monotonic() - self._suspect_since >= self.SUSPECT_S:
            self.warnings.append(said())
            self.broken = True

    def _good(self, torn: bool, final: bool, said) -> None:
        """A read passed its checks; ``torn``: its end is incomplete (at a ``final`` poll, ``said()`` once)."""
        self.suspect, self.torn = None, torn
        if torn and final and not self._torn_said:
            self._torn_said = True
            self.warnings.append(said())


class EventFileTail(FileTail):
    """Incremental reader for an event file that is still being written.

    Each :meth:`poll` returns only the scalars of records completed since the previous poll; an
    incomplete last record is left for the next poll without a warning. A corrupt record stops the
    tail for good (``broken`` becomes True and a line is added to ``warnings``) as :class:`FileTail` says.
    """

    def __init__(self, path, *, tags=None, check_crc: bool = True):
        super().__init__(path)
        self.offset = 0
        self.records_read = 0
        self._tags = None if tags is None else set(tags)
        self._check_crc = check_crc
        self.first_wall_time: float | None = None  # of the file's first record, once read

    def poll(self, *, final: bool = False) -> dict[str, Series]:
        if self.broken:
            return {}
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise InputError(f"cannot stat event file ({exc})", path=str(self.path), hint="check permissions") from None
        if size < self.offset:
            self.warnings.append(
                f"{self.path}: file shrank from {self.offset} to {size} bytes (rewritten?) - reading it again from the start"
            )
            self.offset = 0
        if size == self.offset:
            return {}
        data = read_input_range(self.path, self.offset, size, what="event file")
        dec = _decode_buffer(data, 0, len(data), check_crc=self._check_crc, tag_filter=self._tags)
        base = self.offset
        if dec.skipped:
            self.warnings.append(
                f"{self.path}: skipped {len(dec.skipped)} undecodable record(s) with valid checksums"
                f" (first at byte {base + dec.skipped[0]})"
            )
        problem = None if dec.problem is None else (dec.problem[0], base + dec.problem[1], dec.problem[2])
        read, end = self.records_read + dec.records, base + len(data)

        def said() -> str:
            return _problem_warning(str(self.path), problem, read, end)

        if problem is not None and problem[0] != "truncated":
            self._bad(problem[1], final, said)
        else:  # (truncated: a record still being written, or at the end a torn last write)
            self._good(problem is not None, final, said)
        self.offset = base + dec.consumed
        self.records_read += dec.records
        if self.first_wall_time is None:
            self.first_wall_time = dec.first_wall
        return dec.series


# ---------------------------------------------------------------------------------------------
# Whole run directories
# ---------------------------------------------------------------------------------------------

_FNAME_TIME = re.compile(r"events\.out\.tfevents\.(\d+(?:\.\d+)?)")


def find_event_files(run_dir) -> list[Path]:
    """All ``events.out.tfevents.*`` files under ``run_dir`` (recursively), sorted by path, but those of an
    ``add_hparams`` session (:func:`is_hparams_session`)."""
    root = Path(run_dir)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob(EVENT_FILE_GLOB) if p.is_file() and not is_hparams_session(p))


_HPARAMS_SESSION = b"_hparams_/session_start_info"


def is_hparams_session(path: Path) -> bool:
    """Is the event file an hparams session alone: torch's ``SummaryWriter.add_hparams`` writes one into a subfolder
    of the run (``<run>/<time.time()>/``) with the final metrics it was given as scalars at step 0? Its points are a
    summary of the run, not a series: merged into the run they made a record at iteration 0 (until session 18, "up to
    it 0" for a 200-iteration CleanRL run). A file that also holds the series (SB3's ``HParam`` and Lightning write
    the session into the run's own file) is the run's. Read only for a small file holding the session's marker."""
    try:
        with open(path, "rb") as fh:  # the marker comes first (watch lists the files again every few polls)
            if _HPARAMS_SESSION not in fh.read(1 << 16) or path.stat().st_size > 1 << 20:
                return False
            fh.seek(0)
            data = fh.read()
    except OSError:
        return False
    series = read_scalars_bytes(data, name=str(path)).scalars.values()
    return all(not len(s.steps) or int(s.steps.max()) <= 0 for s in series)


def file_time(path: Path, first_wall: float | None = None) -> float | None:
    """When a writer created the file: the time in its name (``events.out.tfevents.<seconds>...``, as torch's and
    tensorboardX's writers name it), else its first record's wall time."""
    m = _FNAME_TIME.match(path.name)
    return float(m.group(1)) if m else first_wall


def session_starts(files: Mapping[Path, float | None]) -> list[float]:
    """When each process that wrote a run started, oldest first (``{file: its first record's wall time}``).

    OpenRL's layout has a main writer's file in ``logs/``, created when the process starts, and a file per tag in
    folders below it. A run restarted into the same folder (``watchdog run``) gets a second set of files: each
    main file starts a session, and a point belongs to the latest session started at or before its wall time, so
    a tag the new process logs at later steps than the old one's last (the rewards, every ``log_interval``) is
    still the new process's. ``[]`` where there is nothing to tell apart: one main file, or no deeper ones (a
    framework that writes one file per process, whose files are the sessions themselves)."""
    if not files:
        return []
    depth = min(len(path.parts) for path in files)
    mains = [path for path in files if len(path.parts) == depth]
    if len(mains) < 2 or len(mains) == len(files):
        return []
    times = [file_time(path, files[path]) for path in mains]
    return [] if any(t is None for t in times) else sorted(t for t in times if t is not None)


def session_of(starts: list[float], wall_time: float) -> int:
    """The session (index into :func:`session_starts`) a point written at ``wall_time`` belongs to."""
    return max(0, bisect_right(starts, wall_time) - 1) if starts else 0


def series_tag(root: Path, file: Path, tag: str) -> str:
    """The tag a series gets when read from ``file`` inside a run directory.

    OpenRL/tensorboardX ``add_scalars(main, {sub: v})`` writes ``<main>/<sub>/events...`` with the
    in-file tag ``main``; torch's SummaryWriter writes ``<main>_<sub>/events...``. When the folder
    names the sub-tag and it differs from the main tag, the series is ``main/sub`` so that two
    sub-tags do not collide; otherwise (OpenRL's ``value_loss/value_loss``) it is the tag itself.
    """
    try:
        rel = file.parent.relative_to(root)
    except ValueError:
        return tag
    parts = rel.parts
    if not parts:
        return tag
    folder = parts[-1]
    flat = tag.replace("/", "_")
    if folder == tag or folder == flat:
        return tag
    if folder.startswith(flat + "_") and len(folder) > len(flat) + 1:
        sub = folder[len(flat) + 1 :]
        return tag if sub in (tag, flat) else f"{tag}/{sub}"
    if len(parts) >= 2 and parts[-2] == flat:
        return f"{tag}/{folder}"
    return tag


def read_run_scalars(run_dir, *, check_crc: bool = True, tags=None) -> ReadResult:
    """Read and merge all event files of a run, tags normalised (``value_loss`` -> ``train/value_loss``).

    A tag present in several files is concatenated in the order of the files' first wall times.
    Raises :class:`InputError` when the directory is missing or holds no event file.
    """
    root = Path(run_dir)
    if not root.exists():
        raise InputError("run directory not found", path=str(root), hint="check the path passed as the run directory")
    files = find_event_files(root)
    if not files:
        raise InputError(
            "no TensorBoard event files (events.out.tfevents.*) found",
            path=str(root),
            hint="run OpenRL with --use_tensorboard, or read the run's log.txt instead",
        )
    base = root if root.is_dir() else root.parent
    per_file = []
    for f in files:
        r = read_scalars(f, check_crc=check_crc)
        wt = r.first_wall_time
        if wt is None:
            m = _FNAME_TIME.match(f.name)
            wt = float(m.group(1)) if m else float("inf")
        per_file.append((wt, str(f), f, r))
    per_file.sort(key=lambda t: (t[0], t[1]))
    merged: dict[str, list[Series]] = {}
    out = ReadResult()
    tag_filter = None if tags is None else set(tags)
    for _, name, f, r in per_file:
        out.files.append(name)
        out.warnings.extend(r.warnings)
        out.damaged.extend(r.damaged)
        out.records_read += r.records_read
        out.bytes_read += r.bytes_read
        if r.first_wall_time is not None and (out.first_wall_time is None or r.first_wall_time < out.first_wall_time):
            out.first_wall_time = r.first_wall_time
        for tag, ser in r.scalars.items():
            key = normalize_key(series_tag(base, f, tag))
            if tag_filter is not None and key not in tag_filter and tag not in tag_filter:
                continue
            merged.setdefault(key, []).append(ser)
    out.scalars = {k: Series.concat(v) for k, v in merged.items()}
    out.sessions = session_starts({f: r.first_wall_time for _, _, f, r in per_file})
    return out


# ---------------------------------------------------------------------------------------------
# A tiny writer
# ---------------------------------------------------------------------------------------------


def _varint_bytes(v: int) -> bytes:
    v &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f32_bytes(value: float) -> bytes:
    """float32 bytes of ``value``; finite values beyond float32's range become +-inf (as a cast does)."""
    v = float(value)
    try:
        return struct.pack("<f", v)
    except OverflowError:
        return struct.pack("<f", float("inf") if v > 0 else float("-inf"))


def encode_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def encode_scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """The Event protobuf bytes of one ``simple_value`` scalar."""
    tagb = tag.encode("utf-8")
    val = b"\x0a" + _varint_bytes(len(tagb)) + tagb + b"\x15" + _f32_bytes(value)
    summ = b"\x0a" + _varint_bytes(len(val)) + val
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint_bytes(int(step)) + b"\x2a" + _varint_bytes(len(summ)) + summ


class ScalarWriter:
    """Minimal event-file writer: ``events.out.tfevents.<time>.<host>`` with simple_value scalars."""

    def __init__(self, path_dir, *, filename_suffix: str = ""):
        self.log_dir = Path(path_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}{filename_suffix}"
        path = self.log_dir / base
        n = 0
        while path.exists():
            n += 1
            path = self.log_dir / f"{base}.{os.getpid()}.{n}"
        self.path = path
        self._f = open(path, "wb")
        fv = b"brain.Event:2"
        self._f.write(encode_record(b"\x09" + struct.pack("<d", time.time()) + b"\x1a" + _varint_bytes(len(fv)) + fv))
        self._f.flush()

    def add_scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        wt = time.time() if wall_time is None else float(wall_time)
        self._f.write(encode_record(encode_scalar_event(tag, value, step, wt)))

    def write_raw_event(self, event_bytes: bytes) -> None:
        """Append an already-serialised Event (tests use it for tensor forms)."""
        self._f.write(encode_record(event_bytes))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> "ScalarWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
