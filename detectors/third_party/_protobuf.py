"""Just enough of the protobuf wire format to drop declared tensor shapes from an ONNX model."""

from __future__ import annotations

# ONNX field numbers: ModelProto.graph = 7; GraphProto.input = 11, .output = 12;
# ValueInfoProto.name = 1, .type = 2; TypeProto.tensor_type = 1; TypeProto.Tensor.shape = 2
_GRAPH, _INPUT, _OUTPUT, _NAME, _TYPE, _TENSOR, _SHAPE = 7, 11, 12, 1, 2, 1, 2
_LEN = 2  # wire type of length-delimited fields


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def parse(buf: bytes) -> list[tuple[int, int, bytes]]:
    """A message's fields as (number, wire type, raw payload) in file order."""
    fields, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        start = i
        if wire == 0:
            _, i = _read_varint(buf, i)
            payload = buf[start:i]
        elif wire == 1:
            i += 8
            payload = buf[start:i]
        elif wire == 5:
            i += 4
            payload = buf[start:i]
        elif wire == _LEN:
            size, j = _read_varint(buf, i)
            i = j + size
            payload = buf[j:i]
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, wire, payload))
    return fields


def serialize(fields: list[tuple[int, int, bytes]]) -> bytes:
    """Inverse of parse()."""
    out = bytearray()
    for number, wire, payload in fields:
        out += _varint((number << 3) | wire)
        if wire == _LEN:
            out += _varint(len(payload))
        out += payload
    return bytes(out)


def _map(fields, number, fn):
    return [(n, w, fn(p)) if n == number and w == _LEN else (n, w, p) for n, w, p in fields]


def _value_name(payload: bytes) -> str:
    for number, wire, value in parse(payload):
        if number == _NAME and wire == _LEN:
            return value.decode("utf-8", "replace")
    return ""


def drop_value_shapes(model: bytes, names: set[str]) -> bytes:
    """The model with the declared shapes of the named graph inputs/outputs removed (rank and sizes free)."""

    def tensor(payload: bytes) -> bytes:
        return serialize([f for f in parse(payload) if f[0] != _SHAPE])

    def value_info(payload: bytes) -> bytes:
        if _value_name(payload) not in names:
            return payload
        return serialize(_map(parse(payload), _TYPE, lambda t: serialize(_map(parse(t), _TENSOR, tensor))))

    def graph(payload: bytes) -> bytes:
        fields = _map(parse(payload), _INPUT, value_info)
        return serialize(_map(fields, _OUTPUT, value_info))

    return serialize(_map(parse(model), _GRAPH, graph))
