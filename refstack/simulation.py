"""The deterministic driver: endpoints joined by links, run in virtual time.

A :class:`Simulation` owns nothing but the order of events.  Each :meth:`~Simulation.step`
is one instant:

1. find the earliest pending event -- the smallest ``next_deadline()`` of the endpoints
   and ``next_arrival()`` of the links (a deadline already past counts as now);
2. advance the :class:`~refstack.clock.VirtualClock` to it;
3. deliver every frame due by then: ``receive(frame, now)`` on the endpoint at that
   port, links in the order they were connected, port ``"a"`` before ``"b"``;
4. ``poll(now)`` every endpoint, in the order they were added -- all of them, whether
   or not their deadline is due, since a ``receive`` may have left frames to send --
   and send what each returns onto its link, in order.

Everything is called in a fixed order and nothing reads a real clock, so a run is a
pure function of its endpoints and links: the same inputs replay the same trace.

Each endpoint is joined to at most one link and everything its ``poll`` returns goes
onto that link (a host with one interface; routing between several links belongs to
the stack, later).

Livelock.  Virtual time must move.  Within one instant the driver allows at most
``max_stalls`` steps that neither deliver nor send a frame (an endpoint whose deadline
stays at or before now although its ``poll`` did nothing) and at most
``max_steps_per_instant`` steps in all (frames bouncing over zero-latency links
forever).  Past either bound it raises :class:`LivelockError` naming the endpoints
involved, rather than spinning.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .clock import VirtualClock
from .link import Endpoint, Link, Side


class LivelockError(RuntimeError):
    """Virtual time stopped moving: the same instant keeps producing steps."""


class Simulation:
    """Endpoints joined by links, stepped event by event in virtual time.

    ``clock`` is advanced by the simulation only (reading it is fine; moving it forwards
    between steps is tolerated).
    """

    __slots__ = (
        "_clock",
        "_endpoints",
        "_instant",
        "_links",
        "_ports",
        "_senders",
        "_stalls",
        "_steps",
        "_steps_at_instant",
        "max_stalls",
        "max_steps_per_instant",
    )

    def __init__(
        self, clock: VirtualClock, *, max_stalls: int = 100, max_steps_per_instant: int = 10_000
    ) -> None:
        self._clock = clock
        self.max_stalls = max_stalls
        self.max_steps_per_instant = max_steps_per_instant
        self._endpoints: dict[str, Endpoint] = {}
        self._ports: dict[str, tuple[Link, Side]] = {}
        self._links: list[tuple[Link, str, str]] = []
        self._instant: float | None = None
        self._steps_at_instant = 0
        self._stalls = 0
        self._senders: dict[str, None] = {}  # endpoints that sent at this instant, in order
        self._steps = 0

    # --- building -------------------------------------------------------------------
    def add(self, endpoint: Endpoint, name: str) -> None:
        """Add ``endpoint`` under ``name`` (unique); it is polled from the next step on."""
        if name in self._endpoints:
            raise ValueError(f"an endpoint named {name!r} is already in the simulation")
        if not isinstance(endpoint, Endpoint):
            raise TypeError(f"{endpoint!r} lacks receive/poll/next_deadline: it is not an Endpoint")
        if any(e is endpoint for e in self._endpoints.values()):
            raise ValueError(f"{endpoint!r} is already in the simulation under another name")
        self._endpoints[name] = endpoint

    def connect(self, name_a: str, name_b: str, link: Link) -> None:
        """Join endpoint ``name_a`` to port ``"a"`` of ``link`` and ``name_b`` to port ``"b"``."""
        for name in (name_a, name_b):
            if name not in self._endpoints:
                raise ValueError(f"no endpoint named {name!r}: add it before connecting it")
            if name in self._ports:
                raise ValueError(f"endpoint {name!r} is already connected (one link per endpoint)")
        if name_a == name_b:
            raise ValueError(f"cannot connect endpoint {name_a!r} to itself")
        if any(existing is link for existing, _, _ in self._links):
            raise ValueError("this link is already connected")
        self._ports[name_a] = (link, "a")
        self._ports[name_b] = (link, "b")
        self._links.append((link, name_a, name_b))

    # --- state ----------------------------------------------------------------------
    @property
    def clock(self) -> VirtualClock:
        return self._clock

    def now(self) -> float:
        """The current virtual time."""
        return self._clock.now()

    @property
    def steps(self) -> int:
        """How many steps have run."""
        return self._steps

    def endpoint(self, name: str) -> Endpoint:
        return self._endpoints[name]

    def next_event(self) -> float | None:
        """When the next step will run (never before now), or ``None`` when nothing is pending."""
        t: float | None = None
        for name, endpoint in self._endpoints.items():
            d = endpoint.next_deadline()
            if d is not None:
                if math.isnan(d):  # NaN would poison every comparison below
                    raise ValueError(f"endpoint {name!r}: next_deadline() returned NaN")
                if t is None or d < t:
                    t = d
        for link, _, _ in self._links:
            a = link.next_arrival()
            if a is not None and (t is None or a < t):
                t = a
        if t is None:
            return None
        return max(t, self._clock.now())

    # --- running ----------------------------------------------------------------------
    def step(self) -> bool:
        """Run the next event (see the module docstring); ``False``, doing nothing, if there is none."""
        t = self.next_event()
        if t is None:
            return False
        self._step_at(t)
        return True

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Step until ``predicate()`` holds; ``False`` if ``timeout`` virtual seconds pass first.

        ``predicate`` is checked before each step.  Events up to and including
        ``now + timeout`` run; on timeout (or when nothing is left to happen) the clock is
        left at ``now + timeout`` and the answer is ``predicate()`` checked there.
        """
        if not (math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"timeout must be a finite number of seconds >= 0, not {timeout}")
        deadline = self._clock.now() + timeout
        while not predicate():
            t = self.next_event()
            if t is None or t > deadline:
                self._clock.advance_to(max(deadline, self._clock.now()))
                return predicate()
            self._step_at(t)
        return True

    def run_for(self, seconds: float) -> None:
        """Run every event in the next ``seconds`` of virtual time; the clock ends ``seconds`` later."""
        self.run_until(lambda: False, seconds)

    # --- one step ---------------------------------------------------------------------
    def _step_at(self, t: float) -> None:
        self._clock.advance_to(t)
        if t != self._instant:
            self._instant = t
            self._steps_at_instant = 0
            self._stalls = 0
            self._senders = {}
        moved = 0
        for link, name_a, name_b in self._links:
            ports: tuple[tuple[Side, str], ...] = (("a", name_a), ("b", name_b))
            for side, name in ports:
                frames = link.deliverable(side, t)
                if frames:
                    endpoint = self._endpoints[name]
                    for frame in frames:
                        endpoint.receive(frame, t)
                    moved += len(frames)
        for name, endpoint in self._endpoints.items():
            out = endpoint.poll(t)
            if not out:
                continue
            port = self._ports.get(name)
            if port is None:
                raise RuntimeError(f"endpoint {name!r} sent {len(out)} frame(s) but is connected to no link")
            link, side = port
            for frame in out:
                link.send(side, frame, t)
            moved += len(out)
            self._senders[name] = None
        self._steps += 1
        self._steps_at_instant += 1
        if not moved:
            self._stalls += 1
            if self._stalls > self.max_stalls:
                raise LivelockError(self._livelock_report(t, stalled=True))
        if self._steps_at_instant > self.max_steps_per_instant:
            raise LivelockError(self._livelock_report(t, stalled=False))

    def _livelock_report(self, t: float, *, stalled: bool) -> str:
        due = [
            f"{name!r} (next_deadline()={d})"
            for name, endpoint in self._endpoints.items()
            if (d := endpoint.next_deadline()) is not None and d <= t
        ]
        if stalled:
            what = f"{self._stalls} steps at this instant delivered and sent nothing; " + (
                f"{_endpoints(due)} keep{'s' if len(due) == 1 else ''} asking to be polled at this"
                " instant but poll() makes no progress"
                if due
                else "no endpoint is due, yet the instant repeats"
            )
        else:
            what = f"{self._steps_at_instant} steps at this instant without time advancing"
            senders = [repr(name) for name in self._senders]
            if senders:
                what += f"; {_endpoints(senders)} keep{'s' if len(senders) == 1 else ''} sending"
            zero = [
                f"{name_a!r}<->{name_b!r}"
                for link, name_a, name_b in self._links
                if (a := link.next_arrival()) is not None and a <= t
            ]
            if zero:
                what += f"; frames cross link{'s' if len(zero) > 1 else ''} {', '.join(zero)} in zero time"
            if due:
                what += f"; {_endpoints(due)} keep{'s' if len(due) == 1 else ''} asking to be polled"
        return f"livelock at t={t}: {what}"


def _endpoints(names: list[str]) -> str:
    return ("endpoint " if len(names) == 1 else "endpoints ") + ", ".join(names)
