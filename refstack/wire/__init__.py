"""Packet formats of the reference stack: checked views over bytes and builders.

One module per protocol.  Each offers a view class whose constructor checks every
length once and raises :class:`WireError` (field, offset, reason) on anything
malformed, after which no getter can fail; a ``build_*`` emitter; and, in its
docstring, the RFC section that defines the format.  Nothing here holds protocol
state: that lives in the stack.

=============  ===========================  ==========================================
module         view                         format
=============  ===========================  ==========================================
ethernet       :class:`EthernetFrame`       Ethernet II, RFC 894, one 802.1Q tag
arp            :class:`ArpPacket`           RFC 826
ipv4           :class:`Ipv4Packet`          RFC 791 §3.1 (options, fragment fields)
icmp           :class:`IcmpMessage`         RFC 792, RFC 1191 §4
igmp           :func:`parse_igmp`           RFC 1112, RFC 2236 §2, RFC 3376 §4
udp            :class:`UdpDatagram`         RFC 768
tcp            :class:`TcpSegment`          RFC 9293 §3.1
tcp_options    :func:`parse_options`        RFC 9293 §3.2, RFC 7323, RFC 2018
checksum       :func:`checksum`             RFC 1071, pseudo-header RFC 9293 §3.1
=============  ===========================  ==========================================

Per-module constants that share a name (``HEADER_LEN``, ``TYPE_NAMES``) are not
re-exported here; import them from their module.
"""

from .addresses import (
    BROADCAST_MAC,
    Ipv4Addr,
    MacAddr,
    ipv4_addr,
    ipv4_str,
    is_multicast_ipv4,
    mac,
    mac_str,
    multicast_mac,
)
from .arp import OP_REPLY, OP_REQUEST, ArpPacket, build_arp, build_arp_raw
from .checksum import checksum, checksum_ok, pseudo_header_sum
from .errors import WireError
from .ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_VLAN,
    EthernetFrame,
    VlanTag,
    build_ethernet,
)
from .icmp import (
    IcmpMessage,
    build_icmp,
    build_icmp_echo,
    build_icmp_parameter_problem,
    build_icmp_redirect,
    build_icmp_time_exceeded,
    build_icmp_unreachable,
    quote_datagram,
)
from .igmp import (
    GroupRecord,
    IgmpMessage,
    IgmpV3Query,
    IgmpV3Report,
    build_igmp,
    build_igmp_v3_query,
    build_igmp_v3_report,
    decode_max_resp_code,
    encode_max_resp_code,
    parse_igmp,
)
from .ipv4 import (
    PROTO_ICMP,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
    ROUTER_ALERT,
    Ipv4Option,
    Ipv4Packet,
    build_ipv4,
)
from .tcp import ACK, AE, CWR, ECE, FIN, PSH, RST, SYN, URG, TcpFlag, TcpSegment, build_tcp, flags_str
from .tcp_options import (
    EOL,
    NOP,
    SACK_PERMITTED,
    Eol,
    Mss,
    Nop,
    Sack,
    SackPermitted,
    TcpOption,
    Timestamps,
    UnknownOption,
    WindowScale,
)
from .udp import UdpDatagram, build_udp

__all__ = [
    "ACK",
    "AE",
    "BROADCAST_MAC",
    "CWR",
    "ECE",
    "EOL",
    "ETHERTYPE_ARP",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETHERTYPE_VLAN",
    "FIN",
    "NOP",
    "OP_REPLY",
    "OP_REQUEST",
    "PROTO_ICMP",
    "PROTO_IGMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "PSH",
    "ROUTER_ALERT",
    "RST",
    "SACK_PERMITTED",
    "SYN",
    "URG",
    "ArpPacket",
    "Eol",
    "EthernetFrame",
    "GroupRecord",
    "IcmpMessage",
    "IgmpMessage",
    "IgmpV3Query",
    "IgmpV3Report",
    "Ipv4Addr",
    "Ipv4Option",
    "Ipv4Packet",
    "MacAddr",
    "Mss",
    "Nop",
    "Sack",
    "SackPermitted",
    "TcpFlag",
    "TcpOption",
    "TcpSegment",
    "Timestamps",
    "UdpDatagram",
    "UnknownOption",
    "VlanTag",
    "WindowScale",
    "WireError",
    "build_arp",
    "build_arp_raw",
    "build_ethernet",
    "build_icmp",
    "build_icmp_echo",
    "build_icmp_parameter_problem",
    "build_icmp_redirect",
    "build_icmp_time_exceeded",
    "build_icmp_unreachable",
    "build_igmp",
    "build_igmp_v3_query",
    "build_igmp_v3_report",
    "build_ipv4",
    "build_tcp",
    "build_udp",
    "checksum",
    "checksum_ok",
    "decode_max_resp_code",
    "encode_max_resp_code",
    "flags_str",
    "ipv4_addr",
    "ipv4_str",
    "is_multicast_ipv4",
    "mac",
    "mac_str",
    "multicast_mac",
    "parse_igmp",
    "pseudo_header_sum",
    "quote_datagram",
]
