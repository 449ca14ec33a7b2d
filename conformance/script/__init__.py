"""The ``.pkt`` script language (GRAMMAR.md §1-§7): lexer, parser, syntax tree.

>>> from conformance.script import parse
>>> script = parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\\n+0 close(3) = 0\\n")
>>> [event.action.name for event in script.events]
['socket', 'close']

:func:`parse` and :func:`parse_file` return a :class:`~conformance.script.syntax.Script`
(the node classes live in :mod:`conformance.script.syntax`) or raise
:class:`ScriptError`, which prints as ``path:line:col: message``.
"""

from conformance.script.errors import ScriptError
from conformance.script.parser import parse, parse_file

__all__ = ["ScriptError", "parse", "parse_file"]
