"""TensorFlow bundle reader: the real musicnn checkpoints, a bundle written here
in the same format (several blocks and shards), and damaged files."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from musicbert.errors import CheckpointError
from musicbert.tf_checkpoint import (
    TABLE_MAGIC,
    crc32c,
    is_model_variable,
    list_entries,
    masked_crc32c,
    read_checkpoint,
)
from musicbert.weights import checkpoint_dir

# ------------------------------------------------------------ a minimal bundle writer


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)  # type: ignore[arg-type]
    if wire == 5:
        return key + struct.pack("<I", payload)
    return key + varint(len(payload)) + payload  # type: ignore[arg-type]


def block(pairs: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    out = bytearray()
    restarts = []
    previous = b""
    for i, (key, value) in enumerate(pairs):
        if i % restart_every == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_table(path: Path, pairs: list[tuple[bytes, bytes]], per_block: int = 3) -> None:
    data = bytearray()
    index_pairs = []

    def put(contents: bytes) -> bytes:
        offset = len(data)
        data.extend(contents + b"\x00")
        data.extend(struct.pack("<I", masked_crc32c(contents + b"\x00")))
        return varint(offset) + varint(len(contents))

    for start in range(0, len(pairs), per_block):
        chunk = pairs[start : start + per_block]
        index_pairs.append((chunk[-1][0], put(block(chunk))))
    meta_handle = put(block([]))
    index_handle = put(block(index_pairs, restart_every=1))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    path.write_bytes(bytes(data) + footer)


def write_bundle(prefix: Path, tensors: dict[str, tuple[np.ndarray, int]], shards: int) -> None:
    """tensors: name -> (array, shard id); TF dtype enum chosen from the array dtype."""
    codes = {np.dtype("float32"): 1, np.dtype("int64"): 9, np.dtype("float16"): 19}
    blobs = [bytearray() for _ in range(shards)]
    pairs = [(b"", field(1, 0, shards) + field(2, 0, 0))]
    for name in sorted(tensors):
        array, shard = tensors[name]
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        shape = b"".join(field(2, 2, field(1, 0, d)) for d in array.shape)
        entry = field(1, 0, codes[array.dtype]) + field(2, 2, shape)
        entry += field(3, 0, shard) if shard else b""
        entry += field(4, 0, len(blobs[shard])) + field(5, 0, len(raw))
        entry += field(6, 5, masked_crc32c(raw))
        blobs[shard] += raw
        pairs.append((name.encode(), entry))
    write_table(Path(f"{prefix}.index"), pairs)
    for i, blob in enumerate(blobs):
        Path(f"{prefix}.data-{i:05d}-of-{shards:05d}").write_bytes(bytes(blob))


@pytest.fixture
def small_bundle(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    arrays = {
        "dense/kernel": (rng.standard_normal((5, 3)).astype(np.float32), 0),
        "dense/bias": (rng.standard_normal(3).astype(np.float32), 1),
        "dense/kernel/Adam": (np.zeros((5, 3), np.float32), 1),
        "dense/kernel/Adam_1": (np.ones((5, 3), np.float32), 0),
        "conv/kernel": (rng.standard_normal((2, 2, 1, 4)).astype(np.float32), 1),
        "half": (np.arange(6, dtype=np.float16).reshape(2, 3), 0),
        "global_step": (np.array(1234, dtype=np.int64), 0),
        "beta1_power": (np.array(0.9, dtype=np.float32), 0),
    }
    prefix = tmp_path / "model.ckpt-1234"
    write_bundle(prefix, arrays, shards=2)
    return prefix, {name: array for name, (array, _) in arrays.items()}


# ------------------------------------------------------------ tests


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_reads_written_bundle_across_blocks_and_shards(small_bundle):
    prefix, arrays = small_bundle
    tensors = read_checkpoint(prefix)
    assert set(tensors) == set(arrays)
    for name, array in arrays.items():
        assert tensors[name].dtype == array.dtype
        np.testing.assert_array_equal(tensors[name], array)


def test_only_filter_drops_optimiser_state(small_bundle):
    prefix, _ = small_bundle
    tensors = read_checkpoint(prefix, only=is_model_variable)
    assert set(tensors) == {"dense/kernel", "dense/bias", "conv/kernel", "half"}


def test_is_model_variable():
    assert is_model_variable("batch_normalization_3/moving_mean")
    assert is_model_variable("conv2d_5/kernel")
    for name in ("conv2d/kernel/Adam", "dense/bias/Adam_1", "beta1_power", "beta2_power"):
        assert not is_model_variable(name)
    assert not is_model_variable("global_step")


def test_corrupted_tensor_bytes_are_named(small_bundle):
    prefix, _ = small_bundle
    shard = Path(f"{prefix}.data-00001-of-00002")
    blob = bytearray(shard.read_bytes())
    blob[0] ^= 0xFF
    shard.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="data-00001-of-00002"):
        read_checkpoint(prefix)


def test_damaged_index_is_a_checkpoint_error(small_bundle):
    prefix, _ = small_bundle
    index = Path(f"{prefix}.index")
    original = index.read_bytes()
    index.write_bytes(original[:-1] + b"\x00")  # magic number broken
    with pytest.raises(CheckpointError, match="index"):
        read_checkpoint(prefix)
    damaged = bytearray(original)
    damaged[10] ^= 0x55  # inside the first data block: its checksum fails
    index.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(prefix)
    index.write_bytes(original[:20])
    with pytest.raises(CheckpointError):
        read_checkpoint(prefix)


def test_missing_files_are_checkpoint_errors(small_bundle, tmp_path):
    prefix, _ = small_bundle
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nothing-here")
    Path(f"{prefix}.data-00000-of-00002").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        read_checkpoint(prefix)


@pytest.mark.parametrize("name", ["MSD_musicnn", "MTT_musicnn"])
def test_real_musicnn_checkpoint(name):
    folder = checkpoint_dir(name)
    num_shards, entries = list_entries(folder)
    assert num_shards == 1
    names = {e.name for e in entries}
    assert "global_step" in names or any("Adam" in n for n in names)
    tensors = read_checkpoint(folder, only=is_model_variable)
    assert not any("Adam" in n or "power" in n for n in tensors)
    assert len(tensors) == 11 * 4 + 8 * 2 + 2 * 2  # batch norms, convs, dense layers
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert tensors["conv2d_1/kernel"].shape == (7, 67, 1, 204)
    assert tensors["conv2d_2/kernel"].shape == (128, 1, 1, 51)
    assert tensors["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert tensors["dense/kernel"].shape == (1506, 200)
    assert tensors["dense_1/kernel"].shape == (200, 50)
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors.values())
    assert (tensors["batch_normalization_9/moving_variance"] >= 0).all()


def test_real_checkpoint_corruption_detected_by_crc(tmp_path):
    copy = tmp_path / "MSD_musicnn"
    shutil.copytree(checkpoint_dir("MSD_musicnn"), copy)
    _, entries = list_entries(copy)
    kernel = next(e for e in entries if e.name == "dense/kernel")
    data = copy / ".data-00000-of-00001"
    blob = bytearray(data.read_bytes())
    blob[kernel.offset + 100] ^= 0x01
    data.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="dense/kernel"):
        read_checkpoint(copy, only=is_model_variable)
    # the damaged tensor is skipped when not asked for
    assert "conv2d/kernel" in read_checkpoint(copy, only=lambda n: n == "conv2d/kernel")
