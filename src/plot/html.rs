//! `nasp-tui report --format html`: one self-contained HTML file, the report's Markdown as
//! HTML followed by the figures, inline. No scripts, no fonts, styles or images from
//! elsewhere: the file a user copies back from a cluster and opens anywhere.

use std::fmt::Write as _;

use pulldown_cmark::{Options, Parser, html::push_html};

use super::data::RunData;
use super::style::escape;
use super::{Figure, run_figures, sweep_figures};
use crate::sweep::report::Report;

const STYLE: &str = "body{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.4}\
table{border-collapse:collapse;margin:1rem 0;font-size:0.9rem}th,td{border:1px solid #bbb;padding:0.25rem 0.5rem;text-align:left}\
th{background:#eee}code{background:#f4f4f4;padding:0 0.2rem;word-break:break-all}\
figure{margin:1.5rem 0;page-break-inside:avoid}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption{font-size:0.9rem;color:#333;margin-top:0.3rem}.missing{color:#8a4b00}";

/// An SVG document as an element of the page: the XML namespace attribute (an HTML page's
/// `<svg>` has it implied) and any XML prolog dropped.
fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn push_figure(s: &mut String, f: &Figure) {
    let _ = write!(
        s,
        "<figure>\n{}<figcaption>{}</figcaption>\n</figure>\n",
        inline_svg(&f.svg),
        escape(&f.caption)
    );
}

/// The HTML page of a report: its Markdown, the figures of the runs together (several runs),
/// then each run's figures with a note of what its files do not hold yet.
pub fn page(report: &Report, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    let md = report.markdown();
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    push_html(&mut s, Parser::new_ext(&md, opts));
    s.push_str("\n<h2>Figures</h2>\n");
    if report.runs.len() > 1 {
        for f in sweep_figures(report, title) {
            push_figure(&mut s, &f);
        }
    }
    for r in &report.runs {
        let d = RunData::read(&r.path);
        let _ = writeln!(s, "<h3>{}</h3>", escape(&d.who()));
        for m in &d.missing {
            let _ = writeln!(s, "<p class=\"missing\">Not drawn: {}</p>", escape(m));
        }
        for f in run_figures(&d) {
            push_figure(&mut s, &f);
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_goes_inline_without_its_namespace() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"1\" xmlns=\"http://www.w3.org/2000/svg\"><text>a</text></svg>";
        assert_eq!(inline_svg(svg), "<svg width=\"1\"><text>a</text></svg>");
    }
}
