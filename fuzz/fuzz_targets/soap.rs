//! A SOAP request to the Parlay X services and a direction client's SOAP
//! answer: `soap::operation` (the XML reader: no DTD, bounded size, depth
//! and element count; the envelope, its body, the operation) and
//! `parlay::decision` (what a call direction client decided). Any bytes
//! give an element, a decision or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_runtime::{parlay, soap};

/// Walks the tree as the services read it: children by name, texts.
fn read(element: &soap::Element) {
    for name in [
        "callingParty",
        "calledParty",
        "callIdentifier",
        "participant",
        "result",
    ] {
        let _ = element.text_of(name);
        let _ = element.child(name);
    }
    for child in &element.children {
        let _ = parlay::Criterion::parse(&child.text);
        let _ = parlay::caller_matches(&child.text, &element.text);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(operation) = soap::operation(data) {
        read(&operation);
    }
    if let Ok(decision) = parlay::decision(data) {
        let _ = decision.to_string();
    }
});
