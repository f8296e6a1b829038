# Minimal pure-Python + numpy GGUF (v2/v3) reader and writer shared by specd's Python tools.
#
# Only Debian's python3 + python3-numpy are needed. Tensors of type F32, F16, BF16 and Q8_0 are
# returned as numpy arrays shaped the way GGUF lists them reversed (ne[0] innermost), so a
# [out, in] matrix comes back as shape (out, in). Other types are listed but not decoded.
"""Read and write GGUF files.

    f = GgufFile("model.gguf")
    f.metadata["llama.embedding_length"]      # -> 64
    w = f.tensor("blk.0.attn_q.weight")       # -> np.ndarray float32 (64, 64)

    w = GgufWriter()
    w.add("general.architecture", "llama")    # type inferred, or w.add(key, val, GGUF_UINT32)
    w.add_tensor("x", np.zeros((4, 32), np.float32), GGML_F16)
    w.write("out.gguf")
"""

import mmap
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"

# Metadata value types (gguf_type).
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16 = 0, 1, 2, 3
GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL = 4, 5, 6, 7
GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR = {
    GGUF_UINT8: "<u1", GGUF_INT8: "<i1", GGUF_UINT16: "<u2", GGUF_INT16: "<i2",
    GGUF_UINT32: "<u4", GGUF_INT32: "<i4", GGUF_FLOAT32: "<f4", GGUF_BOOL: "<u1",
    GGUF_UINT64: "<u8", GGUF_INT64: "<i8", GGUF_FLOAT64: "<f8",
}

# Tensor types (ggml_type) this module decodes.
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
GGML_TYPE_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0", GGML_BF16: "BF16"}
_BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q8_0: (32, 34)}


class GgufError(Exception):
    """A malformed or unsupported GGUF file."""


class TensorInfo:
    def __init__(self, name, shape_ne, ggml_type, offset):
        self.name = name
        self.ne = list(shape_ne)        # ne[0] innermost
        self.type = ggml_type
        self.offset = offset            # relative to the data section
        self.data_offset = 0            # absolute, set after parsing

    @property
    def shape(self):
        """numpy shape: ne reversed, so a [out, in] matrix is (out, in)."""
        return tuple(reversed(self.ne))

    @property
    def n_elements(self):
        n = 1
        for d in self.ne:
            n *= d
        return n

    @property
    def nbytes(self):
        if self.type not in _BLOCK:
            raise GgufError("tensor %s: unsupported type %d" % (self.name, self.type))
        be, bb = _BLOCK[self.type]
        if self.ne[0] % be:
            raise GgufError("tensor %s: row length %d not a multiple of %d" % (self.name, self.ne[0], be))
        return self.n_elements // be * bb


class _Cursor:
    """Bounds-checked little-endian reads over a bytes-like buffer."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GgufError("truncated in %s at offset %d" % (what, self.pos))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))[0]

    def string(self, what):
        n = self.unpack("<Q", what)
        return bytes(self.take(n, what)).decode("utf-8", errors="surrogateescape")


def _read_value(cur, vtype, what):
    if vtype == GGUF_STRING:
        return cur.string(what)
    if vtype == GGUF_ARRAY:
        etype = cur.unpack("<I", what)
        count = cur.unpack("<Q", what)
        if etype == GGUF_STRING:
            return [cur.string(what) for _ in range(count)]
        if etype == GGUF_ARRAY:
            raise GgufError("nested arrays are not supported (%s)" % what)
        if etype not in _SCALAR:
            raise GgufError("bad array element type %d (%s)" % (etype, what))
        dt = np.dtype(_SCALAR[etype])
        arr = np.frombuffer(cur.take(count * dt.itemsize, what), dtype=dt).copy()
        return arr.astype(bool) if etype == GGUF_BOOL else arr
    if vtype not in _SCALAR:
        raise GgufError("bad value type %d (%s)" % (vtype, what))
    dt = np.dtype(_SCALAR[vtype])
    v = np.frombuffer(cur.take(dt.itemsize, what), dtype=dt)[0]
    if vtype == GGUF_BOOL:
        return bool(v)
    return float(v) if vtype in (GGUF_FLOAT32, GGUF_FLOAT64) else int(v)


def bf16_to_f32(raw_u16):
    """Widen bf16 bit patterns (uint16 array) to float32."""
    return (raw_u16.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round float32 to bf16 bit patterns (nearest even), as ggml does (NaN kept quiet)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
    return rounded


def dequantize_q8_0(raw, n_elements):
    """Q8_0 blocks (fp16 scale + 32 int8) to float32."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "i1", (32,))]))
    out = blocks["qs"].astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)[:n_elements]


def quantize_q8_0(x):
    """float32 (size % 32 == 0) to Q8_0 bytes, matching ggml's reference quantizer."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = (x * inv[:, None]).astype(np.float64)
    qs = np.trunc(v + np.copysign(0.5, v)).astype(np.int8)  # roundf: halves away from zero (exact in f64)
    blocks = np.zeros(len(x), dtype=np.dtype([("d", "<f2"), ("qs", "i1", (32,))]))
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = qs
    return blocks.tobytes()


class GgufFile:
    """A parsed GGUF file. metadata: dict key -> value (ints, floats, str, bool, list, np.ndarray)."""

    def __init__(self, path):
        # Mapped, not read: inflated models are gigabytes and only the decoded tensors need memory.
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            self.buf = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b"")
        self.path = path
        self.metadata = {}
        self.value_types = {}
        self.tensors = {}
        self._parse()

    def _parse(self):
        cur = _Cursor(self.buf)
        if bytes(cur.take(4, "header")) != GGUF_MAGIC:
            raise GgufError("bad magic")
        self.version = cur.unpack("<I", "header")
        if self.version not in (2, 3):
            raise GgufError("unsupported GGUF version %d" % self.version)
        n_tensors = cur.unpack("<Q", "header")
        n_kv = cur.unpack("<Q", "header")
        for _ in range(n_kv):
            key = cur.string("metadata")
            vtype = cur.unpack("<I", "metadata")
            self.value_types[key] = vtype
            self.metadata[key] = _read_value(cur, vtype, "metadata " + key)
        for _ in range(n_tensors):
            name = cur.string("tensor info")
            n_dims = cur.unpack("<I", "tensor info")
            if n_dims < 1 or n_dims > 4:
                raise GgufError("tensor %s: bad n_dims %d" % (name, n_dims))
            ne = [cur.unpack("<Q", "tensor info") for _ in range(n_dims)]
            self.tensors[name] = TensorInfo(name, ne, cur.unpack("<I", "tensor info"),
                                            cur.unpack("<Q", "tensor info"))
        self.alignment = int(self.metadata.get("general.alignment", 32))
        self.data_start = -(-cur.pos // self.alignment) * self.alignment
        for t in self.tensors.values():
            t.data_offset = self.data_start + t.offset
            if t.type in _BLOCK and t.data_offset + t.nbytes > len(self.buf):
                raise GgufError("tensor %s: data out of bounds" % t.name)

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def raw(self, name):
        """The stored bytes of a tensor."""
        t = self.tensors[name]
        return self.buf[t.data_offset:t.data_offset + t.nbytes]

    def tensor(self, name, dtype=np.float32):
        """A tensor decoded to numpy (float32 unless dtype says otherwise), shaped (ne[-1], ..., ne[0]).

        An F32 tensor read as float32 is a read-only view of the mapped file (no copy); copy it to modify.
        """
        t = self.tensors.get(name)
        if t is None:
            raise GgufError("missing tensor %s" % name)
        raw = self.raw(name)
        if t.type == GGML_F32:
            a = np.frombuffer(raw, dtype="<f4")
        elif t.type == GGML_F16:
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif t.type == GGML_BF16:
            a = bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        elif t.type == GGML_Q8_0:
            a = dequantize_q8_0(raw, t.n_elements)
        else:
            raise GgufError("tensor %s: unsupported type %d" % (name, t.type))
        return a.reshape(t.shape).astype(dtype, copy=dtype != np.float32)


def _infer_type(value):
    if isinstance(value, bool):
        return GGUF_BOOL
    if isinstance(value, int):
        return GGUF_UINT32 if 0 <= value < 2**32 else GGUF_INT64
    if isinstance(value, float):
        return GGUF_FLOAT32
    if isinstance(value, str):
        return GGUF_STRING
    if isinstance(value, (list, tuple, np.ndarray)):
        return GGUF_ARRAY
    raise GgufError("cannot infer a GGUF type for %r" % (value,))


def _array_elem_type(value):
    if isinstance(value, np.ndarray):
        for t, dt in _SCALAR.items():
            if t != GGUF_BOOL and np.dtype(dt) == value.dtype.newbyteorder("<"):
                return t
        if value.dtype == bool:
            return GGUF_BOOL
        raise GgufError("no GGUF type for numpy dtype %s" % value.dtype)
    if len(value) == 0:
        return GGUF_INT32
    first = _infer_type(value[0])
    if first in (GGUF_UINT32, GGUF_INT64):  # Python ints: the narrowest signed type holding them all
        return GGUF_INT32 if all(-2**31 <= v < 2**31 for v in value) else GGUF_INT64
    return first


def _pack_string(s):
    b = s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value, elem_type=None):
    if vtype == GGUF_STRING:
        return _pack_string(value)
    if vtype == GGUF_ARRAY:
        et = elem_type if elem_type is not None else _array_elem_type(value)
        head = struct.pack("<IQ", et, len(value))
        if et == GGUF_STRING:
            return head + b"".join(_pack_string(s) for s in value)
        return head + np.asarray(value).astype(_SCALAR[et]).tobytes()
    return np.asarray(value).astype(_SCALAR[vtype]).tobytes()


class GgufWriter:
    """Collects metadata and tensors, then writes a GGUF v3 file."""

    def __init__(self, alignment=32):
        self.kv = {}          # key -> (type, value, elem_type)
        self.tensors = []     # (name, ne, ggml_type, bytes)
        self.alignment = alignment

    def add(self, key, value, vtype=None, elem_type=None):
        self.kv[key] = (vtype if vtype is not None else _infer_type(value), value, elem_type)

    def copy_kv(self, src, key):
        """Copy one key from a GgufFile keeping its stored type."""
        vtype = src.value_types[key]
        value = src.metadata[key]
        et = None
        if vtype == GGUF_ARRAY:
            et = GGUF_STRING if isinstance(value, list) else _array_elem_type(value)
        self.kv[key] = (vtype, value, et)

    def add_tensor(self, name, array, ggml_type=GGML_F32):
        a = np.ascontiguousarray(array, dtype=np.float32)
        ne = list(reversed(a.shape))
        if ggml_type == GGML_F32:
            data = a.astype("<f4").tobytes()
        elif ggml_type == GGML_F16:
            data = a.astype("<f2").tobytes()
        elif ggml_type == GGML_BF16:
            data = f32_to_bf16(a).astype("<u2").tobytes()
        elif ggml_type == GGML_Q8_0:
            data = quantize_q8_0(a)
        else:
            raise GgufError("cannot write tensor type %d" % ggml_type)
        self.add_tensor_raw(name, ne, ggml_type, data)

    def add_tensor_raw(self, name, ne, ggml_type, data):
        if any(t[0] == name for t in self.tensors):
            raise GgufError("duplicate tensor %s" % name)
        self.tensors.append((name, list(ne), ggml_type, bytes(data)))

    def write(self, path):
        if self.alignment != 32:
            self.add("general.alignment", self.alignment, GGUF_UINT32)
        out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, (vtype, value, et) in self.kv.items():
            out += _pack_string(key) + struct.pack("<I", vtype) + _pack_value(vtype, value, et)
        offset = 0
        for name, ne, gtype, data in self.tensors:
            out += _pack_string(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", gtype, offset)
            offset += -(-len(data) // self.alignment) * self.alignment
        out += b"\0" * (-len(out) % self.alignment)
        for _, _, _, data in self.tensors:
            out += data + b"\0" * (-len(data) % self.alignment)
        with open(path, "wb") as fh:
            fh.write(out)


def _main(argv):
    """`specd_gguf.py FILE` prints the metadata (arrays abbreviated) and the tensor table."""
    f = GgufFile(argv[1])
    print("GGUF v%d, %d keys, %d tensors" % (f.version, len(f.metadata), len(f.tensors)))
    for k, v in f.metadata.items():
        s = repr(v)
        if isinstance(v, (list, np.ndarray)):
            s = "[%d] %s..." % (len(v), repr(list(v[:6]))[:-1])
        print("  %-45s %s" % (k, s))
    for t in f.tensors.values():
        print("  %-32s %-5s %s" % (t.name, GGML_TYPE_NAMES.get(t.type, str(t.type)), t.ne))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv))
