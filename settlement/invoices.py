"""Invoice documents: PDF (fpdf2) and CSV of a statement, with currency, net, VAT and gross."""

from __future__ import annotations

import io

from fpdf import FPDF

from flexmarket import csvsafe
from settlement.models import SettlementStatement


def invoice_csv(statement: SettlementStatement) -> str:
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(
        [
            "invoice",
            "period",
            "organisation",
            "contract",
            "kind",
            "description",
            "quantity",
            "unit_price",
            "amount",
            "currency",
        ]
    )
    number = statement.invoice.number if hasattr(statement, "invoice") else ""
    for line in statement.lines.all():
        writer.writerow(
            [
                number,
                statement.period.name,
                statement.organisation.legal_name,
                line.contract.reference
                if line.contract_id
                else (f"Agreement #{line.agreement_id}" if line.agreement_id else ""),
                line.kind,
                line.description,
                line.quantity,
                line.unit_price,
                line.amount_eur,
                statement.currency,
            ]
        )
    vat = f"VAT {statement.vat_percent} %"
    for kind, description, amount in (
        ("net_eur", "", statement.total_eur),
        ("vat_eur", vat, statement.vat_eur),
        ("gross_eur", "", statement.gross_eur),
    ):
        writer.writerow(
            [
                number,
                statement.period.name,
                statement.organisation.legal_name,
                "",
                kind,
                description,
                "",
                "",
                amount,
                statement.currency,
            ]
        )
    return buffer.getvalue()


def invoice_pdf(statement: SettlementStatement) -> bytes:
    number = statement.invoice.number if hasattr(statement, "invoice") else "draft"
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "flexmarket settlement statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    organisation = statement.organisation
    for text in (
        f"Invoice {number} ({statement.get_kind_display().lower()})",
        f"Period {statement.period.name}: {statement.period.start} to {statement.period.end}",
        f"{organisation.legal_name} ({organisation.code}, {organisation.country})",
        "Positive amounts are paid to you; negative amounts are payable by you.",
    ):
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (42, 28, 70, 20, 20)
    pdf.set_font("Helvetica", "B", 9)
    titles = ("Contract / agreement", "Kind", "Description", "Quantity", statement.currency)
    for width, title in zip(widths, titles, strict=True):
        pdf.cell(width, 7, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for line in statement.lines.all():
        cells = (
            line.contract.reference
            if line.contract_id
            else (f"Agreement #{line.agreement_id}" if line.agreement_id else ""),
            line.get_kind_display(),
            line.description[:45],
            f"{line.quantity:.3f}",
            f"{line.amount_eur:.2f}",
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 6, text, border=1)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 10)
    for title, amount in (
        ("Net total", statement.total_eur),
        (f"VAT {statement.vat_percent} %", statement.vat_eur),
        (f"Total including VAT ({statement.currency})", statement.gross_eur),
    ):
        pdf.cell(sum(widths[:-1]), 7, title, border=1)
        pdf.cell(widths[-1], 7, f"{amount:.2f}", border=1)
        pdf.ln()
    return bytes(pdf.output())
