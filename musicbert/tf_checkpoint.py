"""Read TensorFlow checkpoint bundles (``.index`` + ``.data-*``) without TensorFlow.

musicnn's weights ship as a TF v2 "tensor bundle". Installing TensorFlow just
to read ~3 MB of floats is out of the question here, and the format is small:

* ``PREFIX.index`` is an SSTable in LevelDB's layout: data blocks of
  prefix-compressed key/value entries with restart points, an index block
  pointing at them, and a 48-byte footer (two block handles + magic number).
  Every block carries a 5-byte trailer: compression type and a masked CRC32C.
* The value under key ``""`` is a ``BundleHeaderProto`` (shard count,
  endianness); every other key is a tensor name whose value is a
  ``BundleEntryProto`` (dtype, shape, shard id, byte offset and size, masked
  CRC32C of the raw bytes).
* ``PREFIX.data-SSSSS-of-NNNNN`` holds the tensors' raw little-endian bytes.

Protobufs are decoded by hand from the wire format (varints and
length-delimited fields); only the fields above are read. All corruption is
reported as ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicbert.errors import CheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5

# TensorFlow DataType enum values -> numpy dtypes (the ones a model may hold).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}

# Names of optimiser state and bookkeeping that a bundle saved during training holds.
_NON_MODEL = re.compile(
    r"(^|/)(Adam(_\d+)?|Momentum|RMSProp(_\d+)?|Adagrad|ExponentialMovingAverage)($|/)"
    r"|beta[12]_power|global_step|_CHECKPOINTABLE_OBJECT_GRAPH|OPTIMIZER_SLOT"
)


def is_model_variable(name: str) -> bool:
    """True for a model weight; False for optimiser slots, Adam powers and global_step."""
    return not _NON_MODEL.search(name)


# ---------------------------------------------------------------- CRC32C (Castagnoli)


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of ``data`` (pure Python; used once per checkpoint conversion)."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """LevelDB/TF store CRCs rotated and offset so that CRCs of CRCs stay distinct."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------- wire-format helpers


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos : pos + length])
            if len(value) != length:
                raise ValueError("truncated field")
            pos += length
        elif wire == 5:
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, wire, value


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives in the data shards (BundleEntryProto)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for field, _, value in _proto_fields(buf):
        if field == 2:  # repeated Dim dim
            size = 0
            for f, _, v in _proto_fields(value):  # type: ignore[arg-type]
                if f == 1:
                    size = v if v < (1 << 63) else v - (1 << 64)  # type: ignore[operator]
            dims.append(int(size))
        elif field == 3 and value:
            raise ValueError("tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for field, _, value in _proto_fields(buf):
        if field == 1:
            dtype = int(value)  # type: ignore[arg-type]
        elif field == 2:
            shape = _parse_shape(value)  # type: ignore[arg-type]
        elif field == 3:
            shard = int(value)  # type: ignore[arg-type]
        elif field == 4:
            offset = int(value)  # type: ignore[arg-type]
        elif field == 5:
            size = int(value)  # type: ignore[arg-type]
        elif field == 6:
            crc = int(value)  # type: ignore[arg-type]
        elif field == 7:
            sliced = True
    return BundleEntry(name, dtype, shape, shard, offset, size, crc, sliced)


# ---------------------------------------------------------------- SSTable


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, verify: bool) -> bytes:
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(data):
        raise ValueError("block extends past the end of the file")
    kind = data[end]
    if kind != 0:
        raise ValueError(f"compressed table block (type {kind}) is not supported")
    if verify:
        (stored,) = struct.unpack_from("<I", data, end + 1)
        if masked_crc32c(data[offset : end + 1]) != stored:
            raise ValueError("block checksum mismatch")
    return data[offset:end]


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ValueError("block too small")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise ValueError("bad restart count")
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise ValueError("corrupt block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_table(index_path: Path, verify: bool = True) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable file, in key order."""
    data = index_path.read_bytes()
    if len(data) < FOOTER_SIZE:
        raise ValueError("file shorter than the table footer")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise ValueError("not an SSTable (bad magic number)")
    _, _, pos = _block_handle(footer, 0)  # metaindex: unused by TF bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    index_block = _read_block(data, index_offset, index_size, verify)
    pairs: list[tuple[bytes, bytes]] = []
    for _, handle in _block_entries(index_block):
        offset, size, _ = _block_handle(handle, 0)
        pairs.extend(_block_entries(_read_block(data, offset, size, verify)))
    return pairs


# ---------------------------------------------------------------- bundle


def _index_path(prefix: str | Path) -> tuple[Path, str]:
    """The .index file and the textual prefix (a directory means an empty basename)."""
    text = str(prefix)
    path = Path(text)
    if path.is_dir() and (path / ".index").is_file():
        text = str(path) + "/"
    index = Path(text + ".index")
    if not index.is_file():
        raise CheckpointError(f"checkpoint index not found: {index}")
    return index, text


def list_entries(prefix: str | Path, verify: bool = True) -> tuple[int, list[BundleEntry]]:
    """(number of data shards, entries) of the bundle at ``prefix``."""
    index, _ = _index_path(prefix)
    try:
        pairs = read_table(index, verify)
        num_shards = 1
        entries = []
        for key, value in pairs:
            if key == b"":
                for field, _, v in _proto_fields(value):
                    if field == 1:
                        num_shards = int(v)  # type: ignore[arg-type]
                    elif field == 2 and v != 0:
                        raise ValueError("big-endian checkpoints are not supported")
                continue
            entries.append(_parse_entry(key.decode("utf-8"), value))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{index.name} ({index.parent}): corrupt checkpoint index: {exc}"
        ) from exc
    return num_shards, entries


def read_checkpoint(
    prefix: str | Path,
    only: Callable[[str], bool] | None = None,
    verify: bool = True,
) -> dict[str, np.ndarray]:
    """Tensors of the bundle at ``prefix`` as numpy arrays, keyed by variable name.

    ``prefix`` is what TF's Saver wrote (``PREFIX.index`` beside it); a directory
    holding a bare ``.index`` (musicnn's layout) is accepted too. ``only`` picks
    names (e.g. ``is_model_variable``); ``verify`` checks every CRC32C.
    """
    _, text = _index_path(prefix)
    num_shards, entries = list_entries(prefix, verify)
    wanted = [e for e in entries if only is None or only(e.name)]
    out: dict[str, np.ndarray] = {}
    with contextlib.ExitStack() as stack:
        shards: dict[int, bytes | mmap.mmap] = {}
        for entry in wanted:
            shard_path = Path(f"{text}.data-{entry.shard_id:05d}-of-{num_shards:05d}")
            if entry.shard_id not in shards:
                shards[entry.shard_id] = _map_shard(shard_path, stack)
            out[entry.name] = _tensor(entry, shards[entry.shard_id], shard_path, verify)
    return out


def _map_shard(path: Path, stack: contextlib.ExitStack) -> bytes | mmap.mmap:
    """The shard's bytes, memory-mapped so that only the tensors asked for are read."""
    try:
        handle = stack.enter_context(open(path, "rb"))
        if os.fstat(handle.fileno()).st_size == 0:
            return b""
        return stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint data file missing: {path}") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint data file {path}: {exc.strerror}") from exc


def _tensor(entry: BundleEntry, shard: bytes | mmap.mmap, path: Path, verify: bool) -> np.ndarray:
    where = f"{path.name} ({path.parent}), tensor {entry.name!r}"
    if entry.sliced:
        raise CheckpointError(f"{where}: partitioned (sliced) variables are not supported")
    dtype = _DTYPES.get(entry.dtype)
    if dtype is None:
        raise CheckpointError(f"{where}: unsupported TensorFlow dtype {entry.dtype}")
    count = int(np.prod(entry.shape, dtype=np.int64))
    if count * dtype.itemsize != entry.size or any(d < 0 for d in entry.shape):
        raise CheckpointError(f"{where}: size {entry.size} does not match shape {entry.shape}")
    raw = bytes(shard[entry.offset : entry.offset + entry.size])
    if len(raw) != entry.size:
        raise CheckpointError(f"{where}: data file is truncated")
    if verify and entry.crc32c is not None and masked_crc32c(raw) != entry.crc32c:
        raise CheckpointError(f"{where}: checksum mismatch (corrupted data)")
    array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
    return array.astype(dtype.newbyteorder("="), copy=True)
