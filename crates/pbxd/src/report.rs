//! Prints diagnostics the way rustc does, with miette.

use std::io::IsTerminal;

use pbx_lang::diagnostic::Report;
use pbx_lang::Diagnostic;

/// Renders `diagnostic` for the terminal (colours only on a terminal).
pub fn render(diagnostic: &Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, &Report::new(diagnostic)).is_err() {
        return diagnostic.one_line();
    }
    out
}

/// Prints every diagnostic to stderr.
pub fn print_all(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{}", render(diagnostic));
    }
}
