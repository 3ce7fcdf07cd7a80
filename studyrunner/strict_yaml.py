"""YAML read strictly: the one reader of the files a user writes (protocols, validation suites).

PyYAML's ``safe_load`` lets three things through that silently change or sink a study:
a key written twice (the last one wins without a word), an alias "bomb" (a few hundred
bytes of nested aliases that expand to billions of nodes once a validator copies them:
the "billion laughs" attack), and bytes that are not UTF-8 (a ``UnicodeDecodeError``
traceback). Here a repeated key is refused with both line numbers, aliases are allowed only
while the document they expand to stays small (:data:`MAX_EXPANDED_NODES`), and the text
is decoded with an error naming the line and byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_EXPANDED_NODES = 100_000
"""The largest document, counted in scalars, sequences and mappings after every alias is
expanded. The shipped protocols have under 1,000; an alias bomb has billions."""


class YamlInputError(ValueError):
    """A YAML file that cannot be read as written; the message starts ``FILE:LINE:``."""


def decode_utf8(raw: bytes, path: Path) -> str:
    """``raw`` as UTF-8 text, or a :class:`YamlInputError` naming the line and byte offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise YamlInputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8") from exc


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key written twice (merge keys ``<<`` may still be
    overridden, as YAML intends)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: left to SafeLoader's own error
                continue
            if first is not None:
                raise YamlInputError(f"{key_node.start_mark.name}:{line}: key '{key}' is written twice "
                                     f"(lines {first} and {line}); remove one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the document with every alias expanded (an alias shares its anchor's node,
    so sizes are memoised per node: linear in the written file)."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
        elif id(node) in visiting:  # an alias inside its own anchor: expands without end
            return limit + 1
        else:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml_text(text: str, path: Path) -> Any:
    """Parse ``text`` (the content of ``path``) strictly; :class:`YamlInputError` on a
    repeated key or a document that aliases expand beyond :data:`MAX_EXPANDED_NODES`, and
    ``yaml.YAMLError`` on a syntax error."""
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        size = _expanded_size(root, MAX_EXPANDED_NODES)
        if size > MAX_EXPANDED_NODES:
            raise YamlInputError(
                f"{path}: its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} values; "
                "refused (write the repeated settings out, or use fewer nested aliases)")
        return loader.construct_document(root)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> Any:
    """Read and parse a YAML file strictly (:func:`decode_utf8`, :func:`load_yaml_text`)."""
    return load_yaml_text(decode_utf8(path.read_bytes(), path), path)
