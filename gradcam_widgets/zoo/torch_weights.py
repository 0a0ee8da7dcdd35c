"""Read a PyTorch state dict (``.pth``) into numpy arrays without PyTorch.

The Keras zoo model takes its weights from a PyTorch checkpoint; this reader lets it load
where torch is not installed. A checkpoint is pickled, and unpickling can run any code,
so this is not general pickle: the unpickler resolves only the few names a state dict
uses (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
``_rebuild_parameter``, the ``torch.*Storage`` types), each to a harmless stand-in here,
and refuses every other name with :class:`pickle.UnpicklingError` before anything runs.

Both of PyTorch's file formats are read:

- the zip format (PyTorch >= 1.6): ``<name>/data.pkl`` holds the structure, each
  storage's bytes are the archive member ``<name>/data/<key>``;
- the legacy format: five pickles in a row (magic number, protocol version, system
  info, the structure, the storage keys), then for each storage an 8-byte element count
  and its raw bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["read_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

#: ``torch.<Name>Storage`` -> numpy dtype of its elements (bfloat16 read as its bits).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    """Stands for ``torch.<Name>Storage``: only its element type is kept."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """One storage: its key in the file, element type, and (once read) its elements."""

    key: str
    kind: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    """A tensor still to be cut from its storage once the storages are read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> Any:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(tensor: _TensorRef, *_: Any) -> _TensorRef:
    return tensor


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    return collections.OrderedDict(*args)


#: The only names a checkpoint may refer to, and what they become here.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` names; storages come back as :class:`_Storage`."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing {module}.{name}: a state dict of tensors needs no other code"
            ) from None

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not (isinstance(saved_id, tuple) and saved_id[:1] in (("storage",), (b"storage",))):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r:.80}")
        kind, key, _location, numel = saved_id[1:5]
        if not isinstance(kind, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {kind!r:.80}")
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        key = str(key)
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, kind, int(numel))
        return storage


def _materialise(obj: Any) -> Any:
    """Replace every :class:`_TensorRef` by a numpy array (copied from its storage)."""
    if isinstance(obj, _TensorRef):
        data = obj.storage.data
        if data is None:
            raise ValueError(f"storage {obj.storage.key} has no data in the file")
        if obj.storage.kind.name == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        item = data.itemsize
        empty = any(n == 0 for n in obj.size)
        last = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride, strict=True))
        if not empty and (min(obj.stride, default=0) < 0 or last >= len(data)):
            raise ValueError(f"a tensor reaches beyond storage {obj.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            data[obj.offset :],
            shape=obj.size,
            strides=tuple(s * item for s in obj.stride),
            writeable=False,
        )
        return np.array(view)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path.name}: not a PyTorch checkpoint (no single data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
            raise ValueError(f"{path.name}: big-endian checkpoints are not supported")
        storages: dict[str, _Storage] = {}
        structure = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.data = np.frombuffer(raw, dtype=storage.kind.dtype, count=storage.numel)
    return _materialise(structure)


class _PlainUnpickler(_Unpickler):
    """For the legacy header pickles: numbers and dicts only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a checkpoint header")


def _read_legacy(path: Path) -> Any:
    with open(path, "rb") as file:
        if _PlainUnpickler(file, {}).load() != _LEGACY_MAGIC:
            raise ValueError(f"{path.name}: not a PyTorch checkpoint")
        if _PlainUnpickler(file, {}).load() != _LEGACY_PROTOCOL:
            raise ValueError(f"{path.name}: unknown PyTorch legacy protocol")
        info = _PlainUnpickler(file, {}).load()
        if not (isinstance(info, dict) and info.get("little_endian", False)):
            raise ValueError(f"{path.name}: big-endian checkpoints are not supported")
        storages: dict[str, _Storage] = {}
        structure = _Unpickler(file, storages).load()
        keys = _PlainUnpickler(file, {}).load()
        for key in keys:
            storage = storages[str(key)]
            count = int(np.frombuffer(file.read(8), dtype="<i8")[0])
            raw = file.read(count * storage.kind.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.kind.dtype, count=count)
    return _materialise(structure)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict as ``{name: numpy array}``, without PyTorch.

    Args:
        path: a ``.pth`` / ``.pt`` file written by ``torch.save(model.state_dict())``,
            in the zip or the legacy format.

    Returns:
        The tensors as numpy arrays (bfloat16 as float32), in the file's order.

    Raises:
        pickle.UnpicklingError: the file refers to anything but tensors in a dict (it
            might run code when unpickled; nothing of it was run).
        ValueError: not a PyTorch checkpoint, or a layout this reader does not handle.
    """
    path = Path(path)
    result = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    if not isinstance(result, dict) or not all(
        isinstance(v, np.ndarray) for v in result.values()
    ):
        raise ValueError(f"{path.name}: not a state dict of tensors")
    return dict(result)
