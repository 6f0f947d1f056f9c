//! The runtime's `Network` over SIP: outgoing calls, and where an account
//! can be reached (its registrations).

use std::sync::Arc;

use pbx_runtime::call::{Leg, Network, Owner};

use crate::server::SipShared;

/// The SIP side of the call abstraction.
#[derive(Debug, Clone)]
pub struct SipNetwork {
    shared: Arc<SipShared>,
}

impl SipNetwork {
    pub fn new(shared: Arc<SipShared>) -> SipNetwork {
        SipNetwork { shared }
    }
}

impl Network for SipNetwork {
    fn place_call(&self, from: &str, to: &str, owner: Owner) -> Result<Leg, String> {
        crate::call::place(&self.shared, from, to, owner)
    }

    fn devices(&self, address: &str) -> Vec<String> {
        match self.shared.location.lookup(address) {
            // Each device is called through its account's address: the
            // route looks the registration up again when the call is placed.
            Ok(bindings) if !bindings.is_empty() => vec![address.to_string()],
            _ => Vec::new(),
        }
    }
}
