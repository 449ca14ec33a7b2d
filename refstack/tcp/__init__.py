"""TCP (RFC 9293 and friends): the state machine and its building blocks.

- :mod:`.endpoint` -- the TCB and state machine of one connection or listener
- :mod:`.layer` -- demultiplexing, ports, replies for segments nobody owns
- :mod:`.segment` -- an arriving segment with unwrapped sequence numbers
- :mod:`.seq` -- sequence-number arithmetic (RFC 9293 §3.4)
- :mod:`.rto` -- the retransmission timer (RFC 6298)
- :mod:`.congestion` -- NewReno (RFC 5681, RFC 6582)
- :mod:`.sack` -- SACK blocks and the sender's scoreboard (RFC 2018, RFC 6675)
- :mod:`.reassembly` -- out-of-order data
- :mod:`.urgent` -- urgent data and the out-of-band octet (RFC 9293 §3.8.5, RFC 6093)
- :mod:`.isn` -- initial sequence numbers (RFC 6528)
"""

from .endpoint import TcpEndpoint
from .layer import TcpLayer
from .state import TcpState

__all__ = ["TcpEndpoint", "TcpLayer", "TcpState"]
