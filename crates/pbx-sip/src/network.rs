//! The runtime's `Network` over SIP: placing calls, and where an account
//! can be reached (its registrations).

use pbx_runtime::call::{CallError, Device, Leg, Network, OutgoingCall, Status, Transport};
use pbx_runtime::directory::Account;

use crate::server::SipNetwork;

impl Network for SipNetwork {
    fn place_call(&self, call: OutgoingCall) -> Result<Leg, CallError> {
        let network = self
            .this
            .upgrade()
            .ok_or_else(|| CallError::new(Status::SERVICE_UNAVAILABLE, "stopping"))?;
        crate::outgoing::place(&network, call)
    }

    fn devices(&self, account: &Account) -> Vec<Device> {
        let address = account.address();
        let bindings = match self.shared.location.lookup(&address) {
            Ok(bindings) => bindings,
            Err(error) => {
                tracing::warn!(%address, %error, "registrations not readable");
                Vec::new()
            }
        };
        bindings
            .into_iter()
            .map(|binding| Device {
                account: address.clone(),
                contact: binding.contact,
                address: Some(binding.source),
                transport: match binding.transport.to_ascii_lowercase().as_str() {
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => Transport::Udp,
                },
                via: None,
            })
            .collect()
    }

    fn close(&self) {
        self.shutdown();
    }
}
