//! `HTTPCall` (CGPL.md §6.9) against a real HTTP server.

mod common;

use common::{config, run, Call, Scratch};
use pbx_test_peers::HttpServer;

fn logs(name: &str, server: &HttpServer, body: &str, extra: &[String]) -> Vec<String> {
    let scratch = Scratch::new(name);
    let program = format!("entry Main is\n  base = \"{}\";\n{body}\nend;\n", server.url(""));
    scratch.write("stock/web.sppr", program);
    let events = run(
        config(&scratch, "", extra),
        Call::App("web", "petrov@example.com"),
        "",
    );
    assert!(events.errors().is_empty(), "{:?}", events.errors());
    events.logs()
}

#[test]
fn get_post_and_the_result_dictionary() {
    let Some(server) = HttpServer::start() else { return };
    let lines = logs(
        "http-basic",
        &server,
        r#"
          result = HTTPCall(base + "/hello", null);
          SysLog(String(result.responseCode) + " " + result.("Content-Type") + "/" + result.("Content-Subtype"));
          SysLog(result.body);
          SysLog(result.headers.("x-test"));
          form = NewDictionary();
          form.number = "555 1234";
          form.name = "Иван";
          parameters = NewDictionary();
          parameters.body = form;
          query = NewDictionary();
          query.lang = "ru";
          parameters.urlParameters = query;
          SysLog(HTTPCall(base + "/form", parameters).body);
          json = HTTPCall(base + "/json", null);
          SysLog(json.("Content-Subtype") + " " + ObjectToString(JSONToObject(json.body)));
        "#,
        &[],
    );
    assert_eq!(
        lines,
        [
            "200 text/plain",
            "GET /hello [-] ",
            "yes",
            "POST /form?lang=ru [application/x-www-form-urlencoded] number=555+1234&name=%D0%98%D0%B2%D0%B0%D0%BD",
            "json {answer = #42; path = \"/json\";}",
        ]
    );
}

#[test]
fn errors_and_timeouts_are_error_strings() {
    let Some(server) = HttpServer::start() else { return };
    let lines = logs(
        "http-errors",
        &server,
        r#"
          SysLog(String(HTTPCall(base + "/missing", null).responseCode));
          slow = NewDictionary();
          slow.timeout = 1;
          SysLog(HTTPCall(base + "/slow", slow));
          SysLog(HTTPCall("http://127.0.0.1:1/", null));
          SysLog(HTTPCall("ftp://example.com/", null));
        "#,
        &[],
    );
    assert_eq!(
        lines,
        [
            "404",
            "timed out",
            "cannot connect",
            "`ftp://example.com/` is not an http:// or https:// URL"
        ]
    );
}
