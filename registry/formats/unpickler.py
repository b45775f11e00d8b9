"""A restricted pickle interpreter: our own opcode loop, so every opcode means what we decided.

``pickle.Unpickler`` hands a subclass only ``find_class``; what BUILD,
SETITEM or REDUCE then do with the objects is CPython's business, and that
is where safe loaders have been broken before (state written onto classes,
attribute chains, amplifying constructors). This loop implements the
opcodes a pickle of *data* needs, protocols 0-5, and refuses the rest
(PERSID, BINPERSID, out-of-band buffers). It decides nothing about which
objects are acceptable: every global, call, instantiation, BUILD and item
store goes to a :class:`Hooks` object — the restricted loader or the
import scanner — so the scanner and the loader parse the bytes identically.

Invariants:

* An opcode never straddles a frame boundary, and a frame never starts
  inside another: a stream that CPython might parse differently is refused.
* Every object the loop creates is charged to a :class:`Budget` bounded by
  the input's size, so a small artifact cannot make a large allocation.
* joblib's container: after BUILD turns a ``NumpyArrayWrapper`` into an
  :class:`ArraySpec`, the raw array bytes (or a nested pickle for object
  arrays) are read from the same buffer, bounds-checked, outside any frame.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import copyreg
import pickletools
import struct
import sys
from typing import Any

from registry.formats.hooks import ArraySpec, Budget, Hooks, Malformed, NotAPickle

_MAX_LINE = 1 << 20
#: copyreg's live code -> (module, name) table of pickle extensions; typeshed leaves the private name out.
_EXTENSION_NAMES: dict[int, tuple[str, str]] = vars(copyreg)["_inverted_registry"]
#: How deeply tuples and frozensets may nest: hashing them recurses in C, and CPython 3.11 has no guard.
MAX_NESTING = 200
#: How many items hashing one tuple may reach (shared, memoised parts counted each time they are reached).
MAX_LEAVES = 1 << 22
#: ``hash(k) == hash(k + n * (2**61 - 1))``: from this size on, integer keys can be made to collide.
_COLLIDING_INT = 1 << 61
_CONTAINER = 64
_SLOT = 16


class Interpreter:
    """Runs one pickle stream from ``data[pos:]`` through ``hooks``; :meth:`run` returns the object.

    ``container`` enables joblib's raw array data after a wrapper's BUILD;
    nested streams (object arrays) run without it, as joblib reads them with
    a plain unpickler.
    """

    def __init__(self, data: memoryview, pos: int, hooks: Hooks, budget: Budget, *, container: bool) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.frame_end: int | None = None
        self.hooks = hooks
        self.budget = budget
        self.container = container
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        # id -> (tuple or frozenset, depth, items reached by hashing, holds a colliding int), when not flat and small
        self.depths: dict[int, tuple[Any, int, int, bool]] = {}
        self.imports: set[str] = set()
        self.protocol = 0

    # -- reading -------------------------------------------------------------

    def _take(self, n: int) -> memoryview:
        limit = self.end if self.frame_end is None else self.frame_end
        stop = self.pos + n
        if n < 0 or stop > limit:
            if self.frame_end is not None and stop <= self.end:
                raise Malformed("malformed pickle: an opcode straddles the end of its frame")
            raise Malformed(f"malformed pickle: truncated at byte {self.pos} (wanted {n} more bytes)")
        start, self.pos = self.pos, stop
        return self.data[start:stop]

    def _byte(self) -> int:
        """One byte: the common case of :meth:`_take`, without making a view."""
        pos = self.pos
        if pos >= (self.end if self.frame_end is None else self.frame_end):
            return self._take(1)[0]  # raises, naming the problem
        self.pos = pos + 1
        return self.data[pos]

    def _line(self) -> bytes:
        """Look for the newline in growing windows, so each text opcode costs about its own length."""
        limit = self.end if self.frame_end is None else self.frame_end
        stop = min(limit, self.pos + _MAX_LINE)
        start = self.pos
        window = 64
        while True:
            end = min(stop, start + window)
            chunk = bytes(self.data[start:end])
            index = chunk.find(b"\n")
            if index >= 0:
                line = bytes(self.data[self.pos : start + index])
                self.pos = start + index + 1
                return line
            if end >= stop:
                raise Malformed(f"malformed pickle: unterminated line at byte {self.pos} (or one longer than 1 MiB)")
            start, window = end, window * 4

    def _unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    # -- stack -----------------------------------------------------------------

    def _push(self, value: Any, cost: int = 0) -> None:
        if cost:
            self.budget.charge(cost, "an object in the stream")
        self.stack.append(value)

    def _pop(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise Malformed("malformed pickle: an opcode pops from an empty stack")
        return self.stack.pop()

    def _pop_mark(self) -> list[Any]:
        if not self.marks:
            raise Malformed("malformed pickle: an opcode needs a MARK that is not there")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _top(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise Malformed("malformed pickle: an opcode needs an object on an empty stack")
        return self.stack[-1]

    # -- the loop -----------------------------------------------------------------

    def run(self) -> Any:
        dispatch = _DISPATCH
        if self.pos == 0 and self.end == 0:
            raise NotAPickle("not a pickle: the data is empty")
        while True:
            if self.frame_end is not None and self.pos == self.frame_end:
                self.frame_end = None
            code = self._byte()
            handler = dispatch.get(code)
            if handler is None:
                if self.pos == 1 and code not in _KNOWN_OPCODES:
                    raise NotAPickle(f"not a pickle: its first byte {code:#04x} is no pickle opcode")
                raise Malformed(_refused_opcode(code, self.pos - 1))
            if handler(self) is _STOP:
                if self.frame_end is not None and self.pos != self.frame_end:
                    raise Malformed("malformed pickle: STOP inside a frame that has bytes left")
                if len(self.stack) != 1 or self.marks:
                    raise Malformed("malformed pickle: STOP with an unbalanced stack")
                return self.stack.pop()

    # -- opcodes: framing and markers ---------------------------------------------------

    def op_proto(self) -> None:
        self.protocol = self._byte()
        if self.protocol > 5:
            raise Malformed(f"malformed pickle: unsupported protocol {self.protocol}")

    def op_frame(self) -> None:
        if self.frame_end is not None:
            raise Malformed("malformed pickle: a frame begins before the current one ends")
        size = self._unpack("<Q")
        if self.pos + size > self.end:
            raise Malformed("malformed pickle: a frame runs past the end of the data")
        self.frame_end = self.pos + size

    def op_stop(self) -> object:
        return _STOP

    def op_mark(self) -> None:
        self.marks.append(len(self.stack))

    def op_pop(self) -> None:
        if self.marks and len(self.stack) == self.marks[-1]:
            self.marks.pop()
        else:
            self._pop()

    def op_pop_mark(self) -> None:
        self._pop_mark()

    def op_dup(self) -> None:
        self._push(self._top(), 8)

    # -- scalars -------------------------------------------------------------------------

    def op_none(self) -> None:
        self._push(None)

    def op_newtrue(self) -> None:
        self._push(True)

    def op_newfalse(self) -> None:
        self._push(False)

    def op_int(self) -> None:
        text = self._line()
        if text == b"00":
            self._push(False)
        elif text == b"01":
            self._push(True)
        else:
            self._push(_parse_int(text), 32)

    def op_long(self) -> None:
        text = self._line()
        self._push(_parse_int(text[:-1] if text.endswith(b"L") else text), 32 + len(text))

    def op_binint(self) -> None:
        self._push(self._unpack("<i"), 32)

    def op_binint1(self) -> None:
        self._push(self._byte(), 8)

    def op_binint2(self) -> None:
        self._push(self._unpack("<H"), 32)

    def op_long1(self) -> None:
        self._push(int.from_bytes(self._take(self._byte()), "little", signed=True), 40)

    def op_long4(self) -> None:
        size = self._unpack("<i")
        if size < 0:
            raise Malformed("malformed pickle: LONG4 with a negative length")
        self._push(int.from_bytes(self._take(size), "little", signed=True), 32 + size)

    def op_float(self) -> None:
        try:
            self._push(float(self._line()), 24)
        except ValueError:
            raise Malformed("malformed pickle: FLOAT is not a number") from None

    def op_binfloat(self) -> None:
        self._push(self._unpack(">d"), 24)

    # -- strings and bytes ------------------------------------------------------------------

    def _text(self, raw: memoryview | bytes, codec: str) -> None:
        try:
            value = str(raw, codec, "surrogatepass") if codec == "utf-8" else codecs.decode(bytes(raw), codec)
        except UnicodeDecodeError:
            raise Malformed(f"malformed pickle: a string is not valid {codec}") from None
        self._push(value, sys.getsizeof(value))

    def op_binunicode(self) -> None:
        self._text(self._take(self._unpack("<I")), "utf-8")

    def op_short_binunicode(self) -> None:
        self._text(self._take(self._byte()), "utf-8")

    def op_binunicode8(self) -> None:
        self._text(self._take(self._unpack("<Q")), "utf-8")

    def op_unicode(self) -> None:
        self._text(self._line(), "raw-unicode-escape")

    def op_string(self) -> None:
        text = self._line()
        if len(text) < 2 or text[0] != text[-1] or text[:1] not in (b"'", b'"'):
            raise Malformed("malformed pickle: STRING is not quoted")
        self._text(codecs.escape_decode(text[1:-1])[0], "latin-1")

    def op_binstring(self) -> None:
        size = self._unpack("<i")
        self._text(self._take(size), "latin-1")

    def op_short_binstring(self) -> None:
        self._text(self._take(self._byte()), "latin-1")

    def op_binbytes(self) -> None:
        self._bytes(self._take(self._unpack("<I")))

    def op_short_binbytes(self) -> None:
        self._bytes(self._take(self._byte()))

    def op_binbytes8(self) -> None:
        self._bytes(self._take(self._unpack("<Q")))

    def _bytes(self, raw: memoryview) -> None:
        self._push(self.hooks.payload(raw, bytes), 40 + len(raw))

    def op_bytearray8(self) -> None:
        raw = self._take(self._unpack("<Q"))
        self._push(self.hooks.payload(raw, bytearray), 64 + len(raw))

    # -- containers -------------------------------------------------------------------------

    def op_empty_list(self) -> None:
        self._push([], _CONTAINER)

    def op_empty_tuple(self) -> None:
        self._push((), 0)

    def op_empty_dict(self) -> None:
        self._push({}, _CONTAINER)

    def op_empty_set(self) -> None:
        self._push(set(), 4 * _CONTAINER)

    def op_list(self) -> None:
        items = self._pop_mark()
        self._push(items, _CONTAINER + _SLOT * len(items) + (_RECORD if items else 0))

    def _nested(self, value: Any) -> Any:
        """Record how a hashable container nests; refuse one whose hash could overflow the C stack or run forever.

        Tuples cache no hash, so hashing one walks every path through shared
        items: a DAG of 64 memoised levels has 2**64 of them. Only what differs
        from a flat tuple of small items is recorded, to keep the record small.
        """
        if type(value) in (tuple, frozenset) and value:
            depth, leaves, big = 1, 0, False
            for item in value:
                item_depth, item_leaves, item_big = self._shape(item)
                depth = max(depth, item_depth + 1)
                leaves += item_leaves
                big = big or item_big
            if depth > MAX_NESTING:
                raise Malformed(f"malformed pickle: tuples nested more than {MAX_NESTING} deep")
            if leaves > MAX_LEAVES:
                raise Malformed(f"malformed pickle: a tuple reaches more than {MAX_LEAVES} items through shared parts")
            if depth > 1 or big:  # the record keeps ``value`` alive, so its id is never reused for another object
                self.depths[id(value)] = (value, depth, leaves, big)
        return value

    def _shape(self, item: Any) -> tuple[int, int, bool]:
        """(nesting depth, items reached when hashing, holds a colliding integer) of one container item."""
        if type(item) is int:
            return 0, 1, abs(item) >= _COLLIDING_INT
        if type(item) in (tuple, frozenset) and item:
            recorded = self.depths.get(id(item))
            if recorded is not None and recorded[0] is item:
                return recorded[1:]
            return 1, len(item), False
        return 0, 1, False

    def _keys(self, keys: Any) -> None:
        """Refuse keys whose hashes an attacker can make collide (dict and set insertion turns quadratic)."""
        for key in keys:
            if type(key) in (int, tuple, frozenset) and self._shape(key)[2]:
                raise Malformed(
                    f"malformed pickle: an integer key of {_COLLIDING_INT.bit_length()} bits or more "
                    "(such keys can be chosen to share one hash)"
                )

    def op_tuple(self) -> None:
        items = self._pop_mark()
        self._push(self._nested(tuple(items)), _CONTAINER + _SLOT * len(items) + (_RECORD if items else 0))

    def op_tuple1(self) -> None:
        self._push(self._nested((self._pop(),)), _CONTAINER + _SLOT + _RECORD)

    def op_tuple2(self) -> None:
        second = self._pop()
        self._push(self._nested((self._pop(), second)), _CONTAINER + 2 * _SLOT + _RECORD)

    def op_tuple3(self) -> None:
        third = self._pop()
        second = self._pop()
        self._push(self._nested((self._pop(), second, third)), _CONTAINER + 3 * _SLOT + _RECORD)

    def op_dict(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise Malformed("malformed pickle: DICT with an odd number of items")
        self.budget.charge(_CONTAINER + 3 * _SLOT * len(items) + (_RECORD if items else 0), "a dict")
        self._keys(items[::2])
        value: dict[Any, Any] = {}
        _fresh_keys(value, items[::2])
        self.stack.append(value)
        self.hooks.setitems(value, list(zip(items[::2], items[1::2], strict=True)))

    def op_frozenset(self) -> None:
        items = self._pop_mark()
        self.budget.charge(4 * _CONTAINER + 3 * _SLOT * len(items) + (_RECORD if items else 0), "a frozenset")
        self._keys(items)
        self.stack.append(self._nested(frozenset(items)))

    def op_append(self) -> None:
        value = self._pop()
        self.budget.charge(_SLOT + _first_items(self._top()), "a list item")
        self.hooks.extend(self._top(), [value])

    def op_appends(self) -> None:
        items = self._pop_mark()
        self.budget.charge(_SLOT * len(items) + _first_items(self._top()), "list items")
        self.hooks.extend(self._top(), items)

    def op_setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        self.budget.charge(3 * _SLOT + _first_items(self._top()), "a dict item")
        self._keys((key,))
        _fresh_keys(self._top(), (key,))
        self.hooks.setitems(self._top(), [(key, value)])

    def op_setitems(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise Malformed("malformed pickle: SETITEMS with an odd number of items")
        self.budget.charge(3 * _SLOT * len(items) + _first_items(self._top()), "dict items")
        self._keys(items[::2])
        _fresh_keys(self._top(), items[::2])
        self.hooks.setitems(self._top(), list(zip(items[::2], items[1::2], strict=True)))

    def op_additems(self) -> None:
        items = self._pop_mark()
        self.budget.charge(3 * _SLOT * len(items) + _first_items(self._top()), "set items")
        self._keys(items)
        self.hooks.add(self._top(), items)

    # -- memo ------------------------------------------------------------------------------------

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise Malformed(f"malformed pickle: memo entry {index} read before it was written")
        self._push(self.memo[index], 8)

    def _put(self, index: int) -> None:
        if index < 0:
            raise Malformed("malformed pickle: negative memo index")
        self.budget.charge(5 * _SLOT, "a memo entry")
        self.memo[index] = self._top()

    def op_get(self) -> None:
        self._get(_parse_int(self._line()))

    def op_binget(self) -> None:
        self._get(self._byte())

    def op_long_binget(self) -> None:
        self._get(self._unpack("<I"))

    def op_put(self) -> None:
        self._put(_parse_int(self._line()))

    def op_binput(self) -> None:
        self._put(self._byte())

    def op_long_binput(self) -> None:
        self._put(self._unpack("<I"))

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    # -- globals and calls -------------------------------------------------------------------------

    def _global(self, module: str, name: str) -> Any:
        if self.protocol < 3:  # Python 2 names, as CPython's unpickler maps them (fix_imports)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        self.imports.add(f"{module}.{name}")
        return self.hooks.find_class(module, name)

    def _line_text(self) -> str:
        try:
            return self._line().decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("malformed pickle: a global's name is not UTF-8") from None

    def op_global(self) -> None:
        module = self._line_text()
        self._push(self._global(module, self._line_text()), 8)

    def op_stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if type(name) is not str or type(module) is not str:
            raise Malformed("malformed pickle: STACK_GLOBAL needs two strings")
        self._push(self._global(module, name), 8)

    def _ext(self, code: int) -> None:
        key = _EXTENSION_NAMES.get(code)
        if key is None:
            raise Malformed(f"malformed pickle: extension code {code} is not registered in copyreg")
        self._push(self._global(*key), 8)

    def op_ext1(self) -> None:
        self._ext(self._byte())

    def op_ext2(self) -> None:
        self._ext(self._unpack("<H"))

    def op_ext4(self) -> None:
        self._ext(self._unpack("<i"))

    def op_reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if type(args) is not tuple:
            raise Malformed("malformed pickle: REDUCE's arguments are not a tuple")
        self.stack.append(self._nested(self.hooks.call(func, args, self.budget)))

    def op_newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        if type(args) is not tuple:
            raise Malformed("malformed pickle: NEWOBJ's arguments are not a tuple")
        self.stack.append(self.hooks.new(cls, args, {}, self.budget))

    def op_newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        if type(args) is not tuple or type(kwargs) is not dict:
            raise Malformed("malformed pickle: NEWOBJ_EX needs a tuple and a dict")
        self.stack.append(self.hooks.new(cls, args, kwargs, self.budget))

    def _instantiate(self, cls: Any, args: list[Any]) -> None:
        if args or not isinstance(cls, type):
            self.stack.append(self._nested(self.hooks.call(cls, tuple(args), self.budget)))
        else:
            self.stack.append(self.hooks.new(cls, (), {}, self.budget))

    def op_inst(self) -> None:
        module = self._line_text()
        cls = self._global(module, self._line_text())
        self._instantiate(cls, self._pop_mark())

    def op_obj(self) -> None:
        args = self._pop_mark()
        if not args:
            raise Malformed("malformed pickle: OBJ without a class")
        self._instantiate(args[0], args[1:])

    def op_build(self) -> None:
        state = self._pop()
        obj = self._pop()
        result = self.hooks.build(obj, state, self.budget)
        if isinstance(result, ArraySpec):
            result = self._array(result)
        self.stack.append(result)

    # -- joblib's container ------------------------------------------------------------------------

    def _array(self, spec: ArraySpec) -> Any:
        if not self.container:
            raise Malformed("malformed pickle: a joblib array wrapper inside a nested pickle")
        if self.frame_end is not None and self.pos != self.frame_end:
            raise Malformed("malformed joblib file: array data begins inside a pickle frame")
        self.frame_end = None
        if spec.dtype.hasobject:
            nested = Interpreter(self.data, self.pos, self.hooks, self.budget, container=False)
            value = nested.run()
            self.imports |= nested.imports
            self.pos = nested.pos
            return value
        if spec.aligned:
            padding = self._byte()
            self._take(padding)
        count = 1
        for extent in spec.shape:
            count *= extent
        nbytes = count * spec.dtype.itemsize
        if nbytes > self.end - self.pos:
            raise Malformed(
                f"malformed joblib file: an array of shape {spec.shape} and dtype {spec.dtype} needs "
                f"{nbytes} bytes, but only {self.end - self.pos} follow"
            )
        return self.hooks.array(self._take(nbytes), spec, self.budget)


_STOP = object()
#: What the loader may spend recording a non-empty plain container as held (see LoadHooks._use).
_RECORD = 48


def _first_items(target: Any) -> int:
    """The record cost of a plain container that its first items make non-empty."""
    return _RECORD if type(target) in (list, dict, set) and not target else 0


def _fresh_keys(target: Any, keys: Any) -> None:
    """A pickler writes each key of a dict once: a key set twice would let a later value (maybe a call's
    result, which the import scan cannot know) replace one the scan already used to walk the container."""
    if not isinstance(target, dict):
        return
    seen: set[Any] = set()
    for key in keys:
        if key in target or key in seen:
            raise Malformed(f"malformed pickle: a dict key is set twice ({type(key).__name__})")
        seen.add(key)


def _parse_int(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise Malformed(f"malformed pickle: {text[:40]!r} is not an integer") from None


#: Every opcode CPython's unpickler knows, read or not here: a first byte outside it is no pickle at all.
_KNOWN_OPCODES = frozenset(ord(opcode.code) for opcode in pickletools.opcodes)


def _refused_opcode(code: int, position: int) -> str:
    names = {0x50: "PERSID", 0x51: "BINPERSID", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER"}
    if code in names:
        return (
            f"refused opcode {names[code]} at byte {position}: persistent ids and out-of-band buffers "
            "reach outside the artifact, so the safe loader never reads them"
        )
    return f"malformed pickle: unknown opcode 0x{code:02x} at byte {position}"


_DISPATCH = {
    ord(code): getattr(Interpreter, f"op_{name.lower()}")
    for name, code in {
        "PROTO": b"\x80", "FRAME": b"\x95", "STOP": b".", "MARK": b"(", "POP": b"0", "POP_MARK": b"1",
        "DUP": b"2", "NONE": b"N", "NEWTRUE": b"\x88", "NEWFALSE": b"\x89", "INT": b"I", "LONG": b"L",
        "BININT": b"J", "BININT1": b"K", "BININT2": b"M", "LONG1": b"\x8a", "LONG4": b"\x8b",
        "FLOAT": b"F", "BINFLOAT": b"G", "BINUNICODE": b"X", "SHORT_BINUNICODE": b"\x8c",
        "BINUNICODE8": b"\x8d", "UNICODE": b"V", "STRING": b"S", "BINSTRING": b"T",
        "SHORT_BINSTRING": b"U", "BINBYTES": b"B", "SHORT_BINBYTES": b"C", "BINBYTES8": b"\x8e",
        "BYTEARRAY8": b"\x96", "EMPTY_LIST": b"]", "EMPTY_TUPLE": b")", "EMPTY_DICT": b"}",
        "EMPTY_SET": b"\x8f", "LIST": b"l", "TUPLE": b"t", "TUPLE1": b"\x85", "TUPLE2": b"\x86",
        "TUPLE3": b"\x87", "DICT": b"d", "FROZENSET": b"\x91", "APPEND": b"a", "APPENDS": b"e",
        "SETITEM": b"s", "SETITEMS": b"u", "ADDITEMS": b"\x90", "GET": b"g", "BINGET": b"h",
        "LONG_BINGET": b"j", "PUT": b"p", "BINPUT": b"q", "LONG_BINPUT": b"r", "MEMOIZE": b"\x94",
        "GLOBAL": b"c", "STACK_GLOBAL": b"\x93", "EXT1": b"\x82", "EXT2": b"\x83", "EXT4": b"\x84",
        "REDUCE": b"R", "NEWOBJ": b"\x81", "NEWOBJ_EX": b"\x92", "INST": b"i", "OBJ": b"o", "BUILD": b"b",
    }.items()
}  # fmt: skip
