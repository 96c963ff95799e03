/**
 * The needed-patches report as CSV and PDF: the same rows and columns, in the order of
 * GET /api/v1/reports/needed (compliance/routes.ts `neededReport`).
 *
 * CSV follows RFC 4180: CRLF line ends, a field with a comma, quote, CR or LF is quoted and its
 * quotes doubled. Against formula injection in spreadsheets (OWASP "CSV injection"), a field that
 * starts with `=`, `+`, `-`, `@`, a tab or CR gets a leading `'`, so `=cmd|' /C calc'!A0` arrives
 * as the text `'=cmd|' /C calc'!A0`. The PDF shows the text as stored (no prefix: a PDF has no
 * formulas). Host names and patch ids cannot start with those characters; titles can.
 */
import PDFDocument from 'pdfkit';
import { PatchwardenError } from '@patchwarden/core';
import type { NeededReport } from '../compliance/routes.js';

export interface ReportTable {
  title: string;
  columns: { name: string; /** share of the page width */ width: number }[];
  rows: string[][];
}

export function neededTable(report: NeededReport): ReportTable {
  if (report.by === 'device') {
    return {
      title: 'Needed patches by device',
      columns: [
        { name: 'hostname', width: 0.22 },
        { name: 'patch id', width: 0.28 },
        { name: 'title', width: 0.38 },
        { name: 'severity', width: 0.12 },
      ],
      rows: report.items.flatMap((e) => e.needed.map((n) => [e.device.hostname, n.patch, n.title, n.severity])),
    };
  }
  return {
    title: 'Needed patches with the devices needing them',
    columns: [
      { name: 'patch id', width: 0.2 },
      { name: 'title', width: 0.27 },
      { name: 'severity', width: 0.09 },
      { name: 'devices', width: 0.08 },
      { name: 'hostnames', width: 0.36 },
    ],
    rows: report.items.map((e) => [
      e.patch.id,
      e.patch.title,
      e.patch.severity,
      String(e.devices.length),
      e.devices
        .map((d) => d.hostname)
        .sort()
        .join(', '),
    ]),
  };
}

const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field: formula prefix, then RFC 4180 quoting. */
export function csvField(value: string): string {
  const v = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function csvLine(cells: readonly string[]): string {
  return `${cells.map(csvField).join(',')}\r\n`;
}

/** The CSV text in pieces (a header line, then a line per row), for streaming. */
export function* csvLines(table: ReportTable): Generator<string> {
  yield csvLine(table.columns.map((c) => c.name));
  for (const r of table.rows) yield csvLine(r);
}

/**
 * A PDF of the table (A4 landscape, standard Helvetica): title, generation time, header row on
 * every page, long cells wrapped, new pages as needed. The answer is the document as a stream;
 * rows are laid out a batch at a time so a large report does not hold the event loop.
 */
/** A PDF beyond these would run to thousands of pages: the CSV is the format for that. */
export const PDF_MAX_ROWS = 20_000;
export const PDF_MAX_CHARS = 4_000_000;

export function checkPdfSize(table: ReportTable): void {
  const chars = table.rows.reduce((n, r) => n + r.reduce((m, c) => m + c.length, 0), 0);
  if (table.rows.length > PDF_MAX_ROWS || chars > PDF_MAX_CHARS) {
    throw new PatchwardenError('E_VALIDATION', `this report has ${table.rows.length} rows and ${chars} characters; a PDF holds at most ${PDF_MAX_ROWS} rows and ${PDF_MAX_CHARS} characters`, {
      hint: 'narrow it (severity=critical, a lower limit) or download the CSV, which has no such limit',
    });
  }
}

export function neededPdf(table: ReportTable, generatedAt: Date): PDFKit.PDFDocument {
  const doc = new PDFDocument({ size: 'A4', layout: 'landscape', margin: 36, info: { Title: table.title, Producer: 'Patchwarden' }, bufferPages: false });
  const left = doc.page.margins.left;
  const width = doc.page.width - doc.page.margins.left - doc.page.margins.right;
  const bottom = () => doc.page.height - doc.page.margins.bottom;
  const widths = table.columns.map((c) => c.width * width);
  const PAD = 3;
  const FONT = 8;

  /** A cell's text in pieces of at most `lines` wrapped lines (words kept whole where they fit). */
  const pieces = (text: string, w: number, lines: number): string[] => {
    const out: string[] = [];
    let piece: string[] = [];
    let used = 0;
    let lineWidth = 0;
    const space = doc.widthOfString(' ');
    for (const word of text.split(' ')) {
      const ww = doc.widthOfString(word);
      const fits = lineWidth > 0 && lineWidth + space + ww <= w;
      const adds = fits ? 0 : Math.max(1, Math.ceil(ww / w));
      if (used + adds > lines && piece.length) {
        out.push(piece.join(' '));
        piece = [];
        used = 0;
        lineWidth = 0;
      }
      if (lineWidth > 0 && lineWidth + space + ww <= w) lineWidth += space + ww;
      else {
        used += Math.max(1, Math.ceil(ww / w));
        lineWidth = ww > w ? ww % w : ww;
      }
      piece.push(word);
    }
    out.push(piece.join(' '));
    return out;
  };

  const row = (cells: readonly string[], bold: boolean) => {
    doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(FONT);
    const h = Math.max(...cells.map((c, i) => doc.heightOfString(c, { width: widths[i]! - 2 * PAD }))) + 2 * PAD;
    const room = bottom() - doc.page.margins.top - 4 * FONT - 4 * PAD; // a page less its header row
    if (h > room) {
      // taller than a page (thousands of host names): continued over several rows, each fitting a page
      const lines = Math.max(1, Math.floor((room * 0.85) / doc.currentLineHeight(true)));
      const split = cells.map((c, i) => pieces(c, widths[i]! - 2 * PAD, lines));
      const n = Math.max(...split.map((p) => p.length));
      if (n > 1) {
        for (let k = 0; k < n; k++) row(split.map((p) => p[k] ?? ''), bold);
        return;
      }
    }
    if (doc.y + h > bottom()) {
      doc.addPage();
      if (!bold) header();
      doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(FONT);
    }
    const y = doc.y;
    let x = left;
    cells.forEach((c, i) => {
      doc.text(c, x + PAD, y + PAD, { width: widths[i]! - 2 * PAD, lineBreak: true });
      x += widths[i]!;
    });
    doc
      .moveTo(left, y + h)
      .lineTo(left + width, y + h)
      .lineWidth(0.5)
      .strokeColor('#999999')
      .stroke();
    doc.x = left;
    doc.y = y + h;
  };
  const header = () => row(table.columns.map((c) => c.name), true);

  doc.font('Helvetica-Bold').fontSize(16).text(table.title, left, doc.y, { width });
  doc.font('Helvetica').fontSize(9).text(`Generated ${generatedAt.toISOString()} by Patchwarden. ${table.rows.length} row${table.rows.length === 1 ? '' : 's'}.`, { width });
  doc.moveDown(0.8);
  header();

  const BATCH = 200;
  let i = 0;
  const next = () => {
    try {
      for (const end = Math.min(table.rows.length, i + BATCH); i < end; i++) row(table.rows[i]!, false);
      if (i < table.rows.length) setImmediate(next);
      else {
        if (!table.rows.length) doc.font('Helvetica-Oblique').fontSize(FONT).text('No needed patches.', left, doc.y + PAD);
        doc.end();
      }
    } catch (err) {
      doc.destroy(err as Error);
    }
  };
  setImmediate(next);
  return doc;
}
