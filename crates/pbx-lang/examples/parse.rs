use std::sync::Arc;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let file = Arc::new(pbx_lang::SourceFile::new(path, text));
    match pbx_lang::syntax::parse_file(&file) {
        Ok(ast) => println!("{ast:#?}"),
        Err(errors) => {
            let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
            for e in errors {
                let mut out = String::new();
                handler.render_report(&mut out, &pbx_lang::diagnostic::Report::new(&e)).unwrap();
                println!("{out}");
            }
        }
    }
}
