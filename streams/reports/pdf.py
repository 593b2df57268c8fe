"""A report as a PDF with real text and tables (reportlab), charts as images.

Text is set in DejaVu Sans, which matplotlib ships, embedded as a subset: mentions in Spanish,
German or Greek keep their letters (the PDF base fonts only know Latin-1), and the text can
be searched and extracted. Reportlab's Paragraph reads a small markup language, so every
piece of data is escaped before it becomes one.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from notifiers.text import clean, safe_url
from streams.i18n import format_datetime, label, translator
from streams.reports.charts import CHART_KINDS
from streams.reports.data import ReportData, WatchReport
from streams.reports.render import fmt_duration, fmt_int, span_text, watch_facts

__all__ = ["render_pdf"]

_FONT, _BOLD = "EscuchaSans", "EscuchaSans-Bold"
_fonts_lock = threading.Lock()
_fonts: list[str] = []  # the registered names, once


def _register_fonts() -> tuple[str, str]:
    """DejaVu Sans from matplotlib's data, or Helvetica if it cannot be found."""
    with _fonts_lock:
        if _fonts:
            return _fonts[0], _fonts[1]
        from matplotlib import get_data_path
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        ttf = Path(get_data_path()) / "fonts" / "ttf"
        try:
            pdfmetrics.registerFont(TTFont(_FONT, str(ttf / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont(_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
            _fonts.extend([_FONT, _BOLD])
        except Exception:  # reportlab raises TTFError and OSError subclasses: keep a PDF
            _fonts.extend(["Helvetica", "Helvetica-Bold"])
        return _fonts[0], _fonts[1]


def _p(text: str, *, limit: int = 2000) -> str:
    """Data as Paragraph text: cleaned, bounded, markup characters escaped."""
    return escape(clean(text, limit=limit), quote=False)


def _styles() -> dict[str, Any]:
    from reportlab.lib.colors import HexColor
    from reportlab.lib.styles import ParagraphStyle

    regular, bold = _register_fonts()
    ink = HexColor("#2b2f33")
    return {
        "title": ParagraphStyle("title", fontName=bold, fontSize=18, leading=22, textColor=ink),
        "sub": ParagraphStyle("sub", fontName=regular, fontSize=9, leading=12,
                              textColor=HexColor("#5c6670"), spaceAfter=8),
        "h2": ParagraphStyle("h2", fontName=bold, fontSize=14, leading=18, spaceBefore=10,
                             spaceAfter=4, textColor=HexColor("#3b6ea8")),
        "h3": ParagraphStyle("h3", fontName=bold, fontSize=10.5, leading=14, spaceBefore=6,
                             spaceAfter=2, textColor=ink),
        "body": ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=11,
                               textColor=ink),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=7.5, leading=9.5,
                               textColor=ink),
        "cellb": ParagraphStyle("cellb", fontName=bold, fontSize=7.5, leading=9.5,
                                textColor=ink),
    }


def _table(rows: list[list[Any]], widths: list[float], *, header: bool = True) -> Any:
    from reportlab.lib.colors import HexColor
    from reportlab.platypus import Table, TableStyle

    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("LINEBELOW", (0, 0), (-1, -1), 0.4, HexColor("#e3e6ea")),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), HexColor("#f3f5f7")))
    table.setStyle(TableStyle(style))
    return table


def _image(png: bytes, width: float) -> Any:
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Image

    w, h = ImageReader(io.BytesIO(png)).getSize()
    return Image(io.BytesIO(png), width=width, height=width * h / w)


def _watch(data: ReportData, w: WatchReport, charts: Mapping[str, bytes], st: dict[str, Any],
           width: float) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    P = Paragraph  # reportlab's idiom; it keeps the rows readable
    loc = data.locale
    tr = translator(loc)
    _ = tr.gettext
    out: list[Any] = [P(_p(w.name, limit=200), st["h2"])]
    out.append(_table([[P(_p(k), st["cellb"]), P(_p(v), st["cell"])]
                       for k, v in watch_facts(w, loc)], [0.2 * width, 0.8 * width],
                      header=False))
    for kind in CHART_KINDS:
        png = charts.get(f"{kind}-{w.watch_id}")
        if png:
            out += [Spacer(1, 4), _image(png, width)]
    if w.current.terms:
        out.append(P(_p(_("Top terms")), st["h3"]))
        out.append(P(_p(", ".join(f"{t} ({fmt_int(n, loc)})"
                                  for t, n in w.current.terms.items())), st["body"]))
    if w.current.top:
        out.append(P(_p(_("Top mentions by priority")), st["h3"]))
        rows: list[list[Any]] = [[P(_p(h), st["cellb"]) for h in
                                  (_("Priority"), _("Sentiment"), _("Author"), _("Mention"))]]
        for m in w.current.top:
            said = _p(m.text, limit=280)
            url = safe_url(m.url)
            if url:
                said += (f' <link href="{escape(url, quote=True)}" color="#3b6ea8">'
                         f'{_p(tr.pgettext("link", "open"))}</link>')
            rows.append([P(str(m.priority), st["cell"]), P(_p(m.sentiment), st["cell"]),
                         P("@" + _p(m.author, limit=64), st["cell"]), P(said, st["cell"])])
        out.append(_table(rows, [0.09 * width, 0.11 * width, 0.18 * width, 0.62 * width]))
    out.append(P(_p(_("Incidents")), st["h3"]))
    if not w.incidents:
        out.append(P(_p(_("No incidents in this period.")), st["body"]))
        return out
    rows = [[P(_p(h), st["cellb"]) for h in (_("Opened"), _("Severity"), _("Detector"),
                                             _("State"), _("To ack"), _("To resolve"),
                                             _("Summary"))]]
    for i in w.incidents:
        opened = format_datetime(i.opened_at, loc, data.tz, format="EEE d MMM")
        rows.append([P(_p(opened), st["cell"]),
                     P(_p(label(tr, i.severity)), st["cell"]), P(_p(i.detector), st["cell"]),
                     P(_p(label(tr, i.state)), st["cell"]),
                     P(fmt_duration(i.time_to_ack_s), st["cell"]),
                     P(fmt_duration(i.time_to_resolve_s), st["cell"]),
                     P(_p(i.summary, limit=300), st["cell"])])
    out.append(_table(rows, [w_ * width for w_ in (0.13, 0.09, 0.13, 0.1, 0.1, 0.1, 0.35)]))
    return out


def render_pdf(data: ReportData, charts: Mapping[str, bytes]) -> bytes:
    """The whole report as PDF bytes (A4)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    st = _styles()
    _ = translator(data.locale).gettext
    span = span_text(data)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=16 * mm, rightMargin=16 * mm,
                            topMargin=14 * mm, bottomMargin=14 * mm,
                            title=clean(f"{data.title}: {span}", limit=200), author="escucha",
                            invariant=1)  # no random document id: same data, same bytes
    width = doc.width
    sub = _p(span) + (" · " + _p(_("for {audience}").format(audience=data.audience))
                      if data.audience else "")
    story: list[Any] = [Paragraph(_p(data.title, limit=200), st["title"]),
                        Paragraph(sub, st["sub"])]
    for w in data.watches:
        story += _watch(data, w, charts, st, width)
    per = _("per day in {zone}") if data.step == "d" else _("per hour in {zone}")
    story.append(Paragraph(_p(
        _("escucha report {id} · generated {time}").format(
            id=data.report_id, time=format_datetime(data.generated_at, data.locale, data.tz))
        + " · " + per.format(zone=data.timezone)), st["sub"]))

    def footer(canvas: Any, doc_: Any) -> None:
        canvas.saveState()
        canvas.setFont(st["sub"].fontName, 7)
        canvas.drawRightString(A4[0] - 16 * mm, 8 * mm,
                               _("page {number}").format(number=doc_.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
