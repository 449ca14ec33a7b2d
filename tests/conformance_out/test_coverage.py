"""conformance.coverage and ``python -m conformance coverage``: requirement coverage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.coverage import load_requirements, render_text, report, scan


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "rfc_cases"
    (root / "rfc9293" / "close").mkdir(parents=True)
    (root / "rfc9293" / "close" / "fin.pkt").write_text(
        "// RFC 9293 §3.6: a FIN is acked.\n// req: MUST-13 SM-11\n0 socket(..., SOCK_STREAM, 0) = 3\n"
    )
    (root / "rfc9293" / "close" / "linger.pkt").write_text("// req: SM-11, RFC5681-3.2\n")
    (root / "rfc9293" / "close" / "nothing.pkt").write_text("// says nothing\n")
    (root / "rfc9293" / "close" / "typo.pkt").write_text("// req: MUST-99\n")
    (root / "frag").mkdir()
    (root / "frag" / "test_frag.py").write_text(
        "# req: F-1\ndef test_in_order():\n    pass\n\n\ndef test_unlabelled():\n    pass\n"
        "# req: F-7 M-3\nasync def test_late():\n    pass\n"
    )
    (root / "frag" / "helper.py").write_text("# req: MUST-1\n")  # not a case file
    return root


def test_scan_maps_ids_to_cases(corpus: Path) -> None:
    found = scan(corpus)
    assert found.by_id["SM-11"] == ["rfc9293/close/fin.pkt", "rfc9293/close/linger.pkt"]
    assert found.by_id["F-1"] == ["frag/test_frag.py::test_in_order"]
    assert found.by_id["M-3"] == ["frag/test_frag.py::test_late"]
    assert "MUST-1" not in found.by_id
    assert found.cases == 7
    assert sorted(found.without_req) == ["frag/test_frag.py::test_unlabelled", "rfc9293/close/nothing.pkt"]


def test_report_counts_families_and_explains_the_uncovered(corpus: Path) -> None:
    doc = report(scan(corpus))
    assert doc["format"] == "tcpip-parity/coverage" and doc["version"] == 1
    assert doc["summary"]["MUST"] == {"total": 69, "covered": 1}
    assert doc["summary"]["SHLD"] == {"total": 31, "covered": 0}
    rows = {r["id"]: r for r in doc["requirements"]}
    assert (
        rows["MUST-13"]["cases"] == ["rfc9293/close/fin.pkt"] and rows["MUST-13"]["uncovered_reason"] is None
    )
    assert "internal design property" in rows["MUST-8"]["uncovered_reason"]  # class I
    assert doc["unknown_ids"] == {"MUST-99": ["rfc9293/close/typo.pkt"]}
    assert doc["other_ids"] == {"RFC5681-3.2": ["rfc9293/close/linger.pkt"]}
    text = render_text(doc)
    assert text.startswith("7 cases under") and "MUST 1/69" in text and "MUST-99" in text


def test_the_requirement_list_has_every_labelled_id() -> None:
    reqs = load_requirements()
    ids = {r.id for r in reqs}
    assert {f"MUST-{n}" for n in range(1, 70)} <= ids
    assert {f"SHLD-{n}" for n in range(1, 32)} <= ids
    assert {f"SM-{n}" for n in range(1, 15)} <= ids
    assert len(ids) == len(reqs)


def test_cli_json_and_text(corpus: Path, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["coverage", str(corpus), "--json", "-o", str(tmp_path / "c.json")], out, err) == 0
    assert json.loads(out.getvalue()) == json.loads((tmp_path / "c.json").read_text())
    out = io.StringIO()
    assert main(["coverage", str(corpus)], out, err) == 0
    assert "uncovered" in out.getvalue()


def test_cli_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["coverage", str(tmp_path / "none")], out, err) == 2
    assert "not a directory" in err.getvalue() and "Traceback" not in err.getvalue()


def test_onload_ids_and_case_decorator_ids(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "limits.pkt").write_text("// req: ONLOAD-EF_MAX_ENDPOINTS\n")
    (root / "test_x.py").write_text('@case("SM-6 RFC5961-3.2 and some words")\ndef test_a(dut):\n    pass\n')
    doc = report(scan(root))
    assert doc["other_ids"] == {
        "ONLOAD-EF_MAX_ENDPOINTS": ["limits.pkt"],
        "RFC5961-3.2": ["test_x.py::test_a"],
    }
    assert {r["id"]: r["cases"] for r in doc["requirements"]}["SM-6"] == ["test_x.py::test_a"]
    assert doc["unknown_ids"] == {} and doc["cases_without_req"] == []
