"""YAML text -> plain data, plus where every key and list item stands in the text.

libyaml (when present) turns the text into events; this module composes those
events into dicts, lists and scalars itself, with an explicit stack, and records
the 1-based (line, column) of every mapping key and sequence item under its key
path, e.g. ("tasks", "build", "timeout") -> (12, 5): `parse_yaml` first keeps only
the shallow ones (`LEAN_DEPTH`), `Source.all_positions()` gives them all.

Why not `yaml.compose` + construct: libyaml's composer recurses in C, so a
deeply nested file crashes the interpreter, and its per-node resolver hooks
make a 10,000-task file take seconds. Composing here also lets the checks that
PyYAML skips happen in the same pass, each reported as a `Problem`:

- duplicate keys (PyYAML keeps the last silently), after YAML's normalisation
  (`yes` and `true` are the same key);
- keys that are not strings (`on:`, `1:`); the data keeps their source text;
- tags beyond plain safe YAML (`!!python/object`, `!custom`, `!!set`);
- aliases: an alias shares the anchored value (no copy), and counts as many
  values as it expands to; past `MAX_ALIASED` values added by aliases the file
  is refused before anything big exists ("billion laughs"), and past
  `MAX_VALUES` values in all, written or added;
- nesting deeper than `MAX_DEPTH` is refused as it is read (libyaml's scanner
  slows down quadratically with flow nesting).

Scalars are what the user wrote where text is expected: the caller's `is_text(path)`
says which positions hold text, and there a plain scalar that YAML 1.1 would read
as something else (`3.10`, `0027`, `12:30`, `on`, a date) is its source text. Null
(`~`, `null`, nothing) stays None: it has no text to keep. Anchors work on scalars
too; an alias of a scalar in a text position is the anchored scalar's text.

Merge keys (`<<: *defaults`) work as in PyYAML: the mapping's own keys win,
then earlier merged mappings over later ones.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import Problem, TaskFileError

MAX_ALIASED = 1_000_000  # values aliases add; a real task file has a few thousand values in all
MAX_VALUES = 5_000_000  # values in all, aliases expanded; 100,000 tasks of a dozen values each are 1.3 million
MAX_DEPTH = 100  # nesting levels; a task file needs about five
# A file is first read keeping only the positions of paths this short: the top level's keys and
# each task's name (`("tasks", "build")`), all that a valid file without vars or a matrix asks
# for. Every other position is found by a second, whole reading, the first time one is asked
# for (`Source.complete`): to place a problem, for `vars`, for a matrix. At 100,000 tasks the
# positions of every key and item were half of the reading's memory and a sixth of its time.
LEAN_DEPTH = 2

Path = tuple[Any, ...]
Position = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
STR, SEQ, MAP = _TAG + "str", _TAG + "seq", _TAG + "map"
_MERGE_TAG = _TAG + "merge"
_NULL = _TAG + "null"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "binary", "timestamp")}


class _Library:
    """PyYAML and the tables taken from it: imported the first time a text needs the YAML reader
    (about 10 ms of start-up, which a JSON task file that `jsonsrc` reads never pays)."""

    def __init__(self) -> None:
        import yaml
        from yaml.constructor import ConstructorError, SafeConstructor
        from yaml.resolver import Resolver

        self.yaml = yaml
        self.loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
        self.implicit = Resolver.yaml_implicit_resolvers  # first character -> [(tag, regexp)]
        self.implicit_only = {tag for resolvers in self.implicit.values() for tag, _ in resolvers} - _SCALAR_TAGS
        self.errors = (ConstructorError, ValueError, TypeError, OverflowError)  # a scalar that has no value
        self.constructor_error = ConstructorError
        self._constructor = SafeConstructor()
        self._constructors = SafeConstructor.yaml_constructors

    def value(self, tag: str, text: str) -> Any:
        """YAML's value of a scalar of a known tag; one of `errors` when it has none."""
        return self._constructors[tag](self._constructor, self.yaml.ScalarNode(tag, text))


@functools.cache
def library() -> _Library:
    return _Library()

intern = sys.intern
_MERGE = object()  # the key being read is `<<`
_SKIP = object()  # the key being read is invalid: read its value, then drop it


def name_keys(parent: Path) -> str:
    """What keys under `parent` are called in messages; `parse_yaml` takes a replacement."""
    return "keys"


def no_text(path: Path) -> bool:
    """Where scalars are read as their text instead of YAML's value; `parse_yaml` takes a replacement."""
    return False


@dataclass(slots=True)
class Source:
    """What `parse_yaml` read: the data (None for an empty file), positions, problems.
    `complete`: for a file read by `jsonsrc`, which found only some positions, what finds
    them all (the YAML reader), called the first time one it lacks is asked for."""

    data: Any
    positions: dict[Path, Position]
    problems: list[Problem] = field(default_factory=list)
    complete: Callable[[], dict[Path, Position]] | None = None

    def all_positions(self) -> dict[Path, Position]:
        """Every position, found now if they were not yet."""
        if self.complete is not None:
            complete, self.complete = self.complete, None
            self.positions = complete()
        return self.positions

    def position(self, path: Path) -> Position:
        """Where `path` stands, or its nearest parent that has a position."""
        path = tuple(path)
        if self.complete is not None and path not in self.positions:
            self.all_positions()
        while path:
            pos = self.positions.get(path)
            if pos is not None:
                return pos
            path = path[:-1]
        return self.positions.get((), (1, 1))


class _Fatal(Exception):
    """Reading must stop here (the problem has been recorded)."""


class _Frame:
    """A sequence or mapping being composed."""

    __slots__ = ("path", "items", "anchor", "size", "is_key", "key", "seen", "merges", "key_pos", "merge_pos",
                 "start", "placed")

    def __init__(self, path: Path | None, items: Any, anchor: str | None, is_key: bool, start: Position,
                 placed: bool) -> None:
        self.start = start
        self.path = path  # None inside a complex key: nothing there gets a position
        self.placed = placed  # its items' and keys' positions are kept (`_Composer.places`)
        self.items = items  # list, or dict of the mapping's own keys
        self.anchor = anchor
        self.size = 1  # values this node expands to, itself included
        self.is_key = is_key
        self.key: Any = None  # mapping: None while waiting for a key, else the key read
        mapping = items.__class__ is dict
        self.seen: dict[Any, tuple[int, str]] | None = {} if mapping else None  # normalised key -> (line, text)
        self.merges: list[tuple[dict, dict]] | None = None  # mapping: (merged mapping, its key positions)
        self.key_pos: dict[Any, Position] | None = {} if mapping else None  # mapping: key -> position
        self.merge_pos: Position = (1, 1)  # mapping: where its last `<<` key stands


def _pos(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def describe_key(value: Any) -> str:
    """How YAML read a key that is not a string, for messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


class _Composer:
    def __init__(self, text: str, file: str, key_noun: Callable[[Path], str], is_text: Callable[[Path], bool],
                 lean: bool = False) -> None:
        self.lean = lean
        self.lib = library()
        self.implicit = self.lib.implicit
        self.text = text
        self.file = file
        self.key_noun = key_noun
        self.is_text = is_text
        self.positions: dict[Path, Position] = {}
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, dict | None]] = {}  # name -> (value, size, key positions)
        self.anchor_texts: dict[str, str] = {}  # name -> source text of an anchored scalar that is not a string
        self.open_anchors: set[str] = set()
        self.total = 0  # values composed so far, aliases expanded
        self.aliased = 0  # of which added by aliases
        self.data: Any = None
        self.documents = 0
        self.plain_tags: dict[str, str] = {}  # plain scalar -> its tag (`resolve`)

    def places(self, path: Path | None) -> bool:
        """Whether the positions of what stands under `path` are kept: not inside a complex key,
        and when `lean`, only down to a task's own (`("tasks", NAME)`: paths of two keys)."""
        return path is not None and (not self.lean or len(path) < LEAN_DEPTH)

    def problem(self, pos: Position, path: Path | None, message: str) -> None:
        shown = ".".join(str(p) for p in path) if path else ""
        self.problems.append(Problem(pos[0], pos[1], shown, message, self.file))

    # --- where the next node goes -------------------------------------------------

    def child_path(self) -> Path | None:
        """Key path of the node that starts now; None where nothing gets a position."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None:
            return None
        if isinstance(top.items, list):
            return top.path + (len(top.items),)
        if top.key is None or top.key is _SKIP:
            return None
        if top.key is _MERGE:
            return top.path + ("<<",)
        return top.path + (top.key,)

    def count(self, n: int, mark: Any, path: Path | None, aliased: bool = False) -> None:
        self.total += n
        self.aliased += n if aliased else 0
        if self.aliased > MAX_ALIASED:
            self.problem(_pos(mark), path, f"aliases expand this file to more than {MAX_ALIASED:,} values; "
                         "refusing to read it (is it an alias bomb?)")
            raise _Fatal
        if self.total > MAX_VALUES:
            self.problem(_pos(mark), path, f"the file holds more than {MAX_VALUES:,} values (keys, items and "
                         "scalars, aliases expanded); refusing to read it")
            raise _Fatal

    # --- events -------------------------------------------------------------------

    def on_document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            self.problem(_pos(event.start_mark), None, "a second YAML document ('---'): a task file holds one document")
            raise _Fatal

    def on_mapping_start(self, event: Any) -> None:
        self.on_start(event, True)

    def on_sequence_start(self, event: Any) -> None:
        self.on_start(event, False)

    def on_start(self, event: Any, is_map: bool) -> None:
        mark = event.start_mark
        stack = self.stack
        if len(stack) >= MAX_DEPTH:
            self.problem(_pos(mark), None, f"nested more than {MAX_DEPTH} levels deep")
            raise _Fatal
        pos = (mark.line + 1, mark.column + 1)
        is_key = False
        if not stack:
            path: Path | None = ()
            self.positions[()] = pos
        elif (top := stack[-1]).items.__class__ is list:
            path = None if top.path is None else top.path + (len(top.items),)
            if top.placed:
                self.positions[path] = pos
        else:
            is_key = top.key is None
            path = None if is_key else self.child_path()
        tag = event.tag
        if tag not in (None, "!", MAP if is_map else SEQ):
            self.problem(pos, path, f"unsupported tag {_short_tag(tag)}: task files hold plain "
                         "strings, numbers, booleans, lists and mappings")
        self.count(1, mark, path)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        stack.append(_Frame(path, {} if is_map else [], event.anchor, is_key, pos, self.places(path)))

    def on_end(self, event: Any) -> None:
        frame = self.stack.pop()
        value = frame.items
        key_pos = frame.key_pos
        if frame.merges:
            merged: dict = {}
            merged_pos: dict = {}
            for src, src_pos in reversed(frame.merges):  # earlier merges win over later ones
                merged.update(src)
                merged_pos.update(src_pos)
            merged.update(value)  # the mapping's own keys win
            if frame.placed:
                for k, pos in merged_pos.items():
                    if k not in value:
                        self.positions[frame.path + (k,)] = pos
            merged_pos.update(frame.key_pos)
            value, key_pos = merged, merged_pos
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, key_pos)
            self.anchor_texts.pop(frame.anchor, None)
        if frame.is_key:
            top = self.stack[-1]
            what = "a mapping" if isinstance(value, dict) else "a list"
            self.problem(frame.start, top.path, f"{self.key_noun(top.path or ())} must be strings, not {what}")
            top.key = _SKIP
            top.size += frame.size
            return
        self.add(value, frame.size, event.start_mark, key_pos)

    def on_alias(self, event: Any) -> None:
        mark = event.start_mark
        name = event.anchor
        path = self.child_path()
        if name in self.open_anchors:
            self.problem(_pos(mark), path, f"alias *{name} refers to a value that contains it")
            value, size, key_pos = None, 1, None
        elif name not in self.anchors:
            self.problem(_pos(mark), path, f"unknown alias *{name} (no anchor &{name} before it)")
            value, size, key_pos = None, 1, None
        else:
            value, size, key_pos = self.anchors[name]
            if name in self.anchor_texts and path is not None and self.is_text(path):
                value = self.anchor_texts[name]
        self.count(size, mark, path, aliased=True)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.items, dict) and top.key is None:
            self.on_key(value, None, mark)
            top.size += size
            return
        if top is not None and isinstance(top.items, list) and top.placed:
            self.positions[path] = _pos(mark)
        if key_pos and self.places(path):  # the keys of an aliased mapping: where they are written
            for k, pos in key_pos.items():
                self.positions[path + (k,)] = pos
        self.add(value, size, mark, key_pos)

    def on_scalar(self, event: Any) -> None:
        # The hot path: one call per scalar of the file, so it avoids helper calls.
        mark = event.start_mark
        self.total += 1
        if self.total > MAX_VALUES:
            self.count(0, mark, self.child_path())  # reports and stops
        text = intern(event.value)  # one object for a text written many times (keys, names, `5m`)
        tag = event.tag
        if tag is None or tag == "!":
            tag = STR
            if event.implicit[0] and text[:1] in self.implicit:
                tag = self.plain_tags.get(text) or self.resolve(text)
        stack = self.stack
        if not stack:
            self.positions[()] = (mark.line + 1, mark.column + 1)
            self.data = self.construct(tag, text, mark, ())
            return
        top = stack[-1]
        top.size += 1
        items = top.items
        if items.__class__ is list:
            if top.placed:
                self.positions[top.path + (len(items),)] = (mark.line + 1, mark.column + 1)
            value = text if tag == STR else self.construct(tag, text, mark,
                                                           None if top.path is None else top.path + (len(items),))
            items.append(value)
        elif (key := top.key) is None:  # this scalar is a key
            value = text
            if tag == STR and text not in top.seen:  # the common case, without `on_key`'s checks
                pos = (mark.line + 1, mark.column + 1)
                top.seen[text] = (pos[0], text)
                top.key = text
                top.key_pos[text] = pos
                if top.placed:
                    self.positions[top.path + (text,)] = pos
            else:
                if tag != STR:
                    value = self.construct(tag, text, mark, top.path, is_key=True)
                self.on_key(value, text, mark)
        else:
            top.key = None
            if key is _SKIP:
                return
            path = None if top.path is None else top.path + (key if key is not _MERGE else "<<",)
            value = text if tag == STR else self.construct(tag, text, mark, path)
            if key is _MERGE:
                top.key = _MERGE
                self.add(value, 0, mark, None)
                return
            items[key] = value
        if event.anchor is not None:
            self.anchor_scalar(event.anchor, tag, text, value)

    def resolve(self, text: str) -> str:
        """The tag YAML gives a plain scalar (`5` an int, `yes` a bool), remembered per text."""
        tag = STR
        for resolved, regexp in self.implicit[text[:1]]:
            if regexp.match(text):
                tag = resolved
                break
        self.plain_tags[text] = tag
        return tag

    def anchor_scalar(self, name: str, tag: str, text: str, value: Any) -> None:
        """Remember an anchored scalar both ways: an alias is read where it stands, so it is
        the text in a text position and YAML's value anywhere else."""
        self.anchor_texts.pop(name, None)
        if tag in _SCALAR_TAGS and tag != STR and tag != _NULL:
            self.anchor_texts[name] = text
            if value is text:  # read as text where it is anchored
                try:
                    value = self.lib.value(tag, text)
                except self.lib.errors:
                    pass  # no value but its text
        self.anchors[name] = (value, 1, None)

    def construct(self, tag: str, text: str, mark: Any, path: Path | None, is_key: bool = False) -> Any:
        """The value of a scalar that is not a plain string."""
        if tag == _MERGE_TAG:
            return _MERGE if is_key else text
        if tag not in _SCALAR_TAGS:
            if tag in self.lib.implicit_only:  # the implicit `value` tag (`=`): no safe meaning, keep the text
                return text
            self.problem(_pos(mark), path, f"unsupported tag {_short_tag(tag)}: task files hold plain "
                         "strings, numbers, booleans, lists and mappings")
            return text
        if tag == STR:
            return text
        if tag != _NULL and not is_key and path is not None and self.is_text(path):
            return text  # what the user wrote: `3.10`, not 3.1
        try:
            return self.lib.value(tag, text)
        except self.lib.errors as e:
            reason = e.problem if isinstance(e, self.lib.constructor_error) else str(e)
            self.problem(_pos(mark), path, f"cannot read {text!r} as {_short_tag(tag)}: {reason}")
            return text

    # --- placing values -------------------------------------------------------------

    def on_key(self, value: Any, text: str | None, mark: Any) -> None:
        top = self.stack[-1]
        pos = _pos(mark)
        if value is _MERGE:
            key, norm, text = _MERGE, "<<", "<<"
        elif isinstance(value, str):
            key = norm = value
            text = value
        else:
            try:
                hash(value)
            except TypeError:
                value = repr(value)
            norm = value
            key = text if text is not None else str(value)
            if top.path is not None:
                noun = self.key_noun(top.path)
                self.problem(pos, top.path + (key,), f"{noun} must be strings; quote it "
                             f"(YAML reads unquoted {key} as {describe_key(value)})")
        first = top.seen.get(norm)
        if first is not None and top.path is not None:
            line, first_text = first
            shown = key if key is not _MERGE else "<<"
            if first_text == text:
                msg = f"duplicate key (first at line {line}; YAML would keep only the last)"
            else:
                msg = (f"duplicate key: YAML reads {first_text!r} (line {line}) and {text!r} as the same key "
                       f"({describe_key(norm)}); quote them")
            self.problem(pos, top.path + (shown,), msg)
        else:
            top.seen[norm] = (pos[0], text)
        top.key = key
        if key is _MERGE:
            top.merge_pos = pos
        else:
            top.key_pos[key] = pos
            if top.placed:
                self.positions[top.path + (key,)] = pos

    def add(self, value: Any, size: int, mark: Any, key_pos: dict | None) -> None:
        if not self.stack:
            self.data = value
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.items, list):
            top.items.append(value)
            return
        key = top.key
        top.key = None
        if key is _SKIP:
            return
        if key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if all(isinstance(s, dict) for s in sources) and sources:
                if top.merges is None:
                    top.merges = []
                for s in sources:
                    top.merges.append((s, self.merge_positions(s, key_pos if s is value else None)))
            elif top.path is not None:
                self.problem(top.merge_pos, top.path + ("<<",),
                             "'<<' merges a mapping or a list of mappings (write <<: *name)")
            return
        top.items[key] = value

    def merge_positions(self, mapping: dict, key_pos: dict | None) -> dict:
        if key_pos is not None:
            return key_pos
        for value, _size, pos in self.anchors.values():  # a mapping reached through a list of aliases
            if value is mapping and pos is not None:
                return pos
        return {}


def parse_yaml(text: str, *, file: str = "", key_noun: Callable[[Path], str] = name_keys,
               is_text: Callable[[Path], bool] = no_text) -> Source:
    """Read one YAML document; raise TaskFileError if it cannot be read at all.

    Problems that leave the data usable (duplicate keys, non-string keys,
    unsupported tags) come back in `Source.problems`, so the caller can add its
    own and report them all together.
    """
    from runner.jsonsrc import read_json  # here: it reads this module's limits

    def every_position() -> dict[Path, Position]:
        return _read(text, file, key_noun, is_text).positions

    fast = read_json(text, is_text)
    if fast is not None:
        data, positions = fast
        return Source(data, positions, complete=every_position)
    source = _read(text, file, key_noun, is_text, lean=True)
    source.complete = every_position
    return source


def _read(text: str, file: str, key_noun: Callable[[Path], str], is_text: Callable[[Path], bool],
          lean: bool = False) -> Source:
    """The whole reading; `lean`: only the positions down to a task's own are kept (see `LEAN_DEPTH`)."""
    try:
        return _parse(text, file, key_noun, is_text, library().loader, lean)
    except _TooDeep:
        # libyaml >= 0.2.6 stops at 1,000 levels while it scans ahead, before taskrun's own
        # limit (100, counted as the nodes arrive) is reached: the pure-Python reader scans
        # lazily, so the same file gets the same problem at the same place with either.
        return _parse(text, file, key_noun, is_text, library().yaml.SafeLoader, lean)


class _TooDeep(Exception):
    """The YAML library refused the nesting before taskrun's own check could."""


def _parse(text: str, file: str, key_noun: Callable[[Path], str], is_text: Callable[[Path], bool],
           loader_class: Any, lean: bool) -> Source:
    composer = _Composer(text, file, key_noun, is_text, lean)
    yaml = composer.lib.yaml
    loader = loader_class(text)
    handlers = {
        yaml.ScalarEvent: composer.on_scalar,
        yaml.MappingStartEvent: composer.on_mapping_start,
        yaml.SequenceStartEvent: composer.on_sequence_start,
        yaml.MappingEndEvent: composer.on_end,
        yaml.SequenceEndEvent: composer.on_end,
        yaml.AliasEvent: composer.on_alias,
        yaml.DocumentStartEvent: composer.on_document,
    }
    on_scalar, get_event, scalar = composer.on_scalar, loader.get_event, yaml.ScalarEvent
    try:
        while (event := get_event()) is not None:
            if event.__class__ is scalar:  # most events
                on_scalar(event)
            elif (handler := handlers.get(event.__class__)) is not None:
                handler(event)
    except _Fatal:
        raise TaskFileError(composer.problems) from None
    except yaml.MarkedYAMLError as e:
        if "maximum nesting depth" in str(e.problem) and loader_class is not yaml.SafeLoader:
            raise _TooDeep from None
        mark = e.problem_mark or e.context_mark
        where = _pos(mark) if mark is not None else (1, 1)
        message = f"invalid YAML: {e.problem}"
        if e.context and e.context_mark is not None:
            message += f" ({e.context} at line {e.context_mark.line + 1}, column {e.context_mark.column + 1})"
        composer.problems.append(Problem(where[0], where[1], "", message, file))
        raise TaskFileError(composer.problems) from None
    except yaml.reader.ReaderError as e:
        prefix = text.encode("utf-8")[: e.position].decode("utf-8", "replace")  # position counts bytes
        line = prefix.count("\n") + 1
        column = len(prefix) - (prefix.rfind("\n") + 1) + 1
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "\0")
        composer.problems.append(Problem(line, column, "", f"invalid YAML: {e.reason} (character U+{char:04X})",
                                         file))
        raise TaskFileError(composer.problems) from None
    except yaml.YAMLError as e:
        composer.problems.append(Problem(1, 1, "", f"invalid YAML: {e}", file))
        raise TaskFileError(composer.problems) from None
    finally:
        loader.dispose()
    return Source(composer.data, composer.positions, composer.problems)
