"""Onload-style diagnostic tools for refstack stacks: ``stackdump``, ``fuser``, ``tcpdump``.

Run them as ``refstack <tool> ...`` (or ``python -m refstack <tool> ...``); they reach
stacks in other processes through each stack's control endpoint
(:mod:`refstack.control`).  The formatters in :mod:`refstack.tools.stackdump` also work
on an in-process :class:`~refstack.stack.Stack`.
"""
