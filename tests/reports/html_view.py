"""Read back what a rendered report shows, with the standard library's HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class CaseRow:
    id: str
    attrs: dict[str, str]
    name: str = ""
    verdicts: dict[str, str] = field(default_factory=dict)  # target -> verdict ("" = no result)


class ReportView(HTMLParser):
    """The matrix rows (in page order), the counts table and every link and script source."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[CaseRow] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.tags: set[str] = set()
        self._row: CaseRow | None = None
        self._in_name = False
        self._count_target = ""
        self._in_template = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        if tag == "template":
            self._in_template += 1
        if self._in_template:
            return
        if tag == "tbody" and "case" in a.get("class", "").split():
            self._row = CaseRow(a["id"], a)
            self.rows.append(self._row)
        elif tag == "tbody":
            self._row = None
        elif tag == "span" and a.get("class") == "cname":
            self._in_name = True
        elif tag == "td" and self._row is not None and "data-target" in a:
            self._row.verdicts[a["data-target"]] = a.get("data-verdict", "")
        elif tag == "tr" and "data-target" in a:
            self._count_target = a["data-target"]
        elif tag == "td" and self._count_target and "data-count" in a:
            self.counts[self._count_target, a["data-verdict"]] = int(a["data-count"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._in_template -= 1
        elif tag == "span":
            self._in_name = False
        elif tag == "tr":
            self._count_target = ""

    def handle_data(self, data: str) -> None:
        if self._in_name and self._row is not None and not self._in_template:
            self._row.name += data

    def row(self, key: str) -> CaseRow:
        """The row whose case key (data-text starts with it) is ``key``."""
        for r in self.rows:
            if r.attrs["data-text"].split(" ")[0] == key.lower():
                return r
        raise KeyError(key)
