//! Where an outgoing call goes: an account's registered device (to the
//! address its REGISTER came from, so phones behind NAT are reached), a
//! trunk for numbers beyond the server, or a SIP address elsewhere.

use std::net::SocketAddr;

use pbx_runtime::address::Destination;
use pbx_runtime::call::{CallError, Status, Target, Transport as DeviceTransport};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::sip::{HostWithPort, Transport};
use rsipstack::transport::SipAddr;

use crate::server::SipShared;

/// An outgoing call's Request-URI, where to send the INVITE, and the
/// credentials to answer a challenge with.
#[derive(Clone)]
pub struct Route {
    pub request_uri: String,
    pub destination: Option<SipAddr>,
    pub credential: Option<Credential>,
    /// The trunk it goes through, by name.
    pub trunk: Option<String>,
}

/// `*` is any run of characters; the rest must match exactly.
fn matches(pattern: &str, number: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == number,
        Some((head, tail)) => {
            number.len() >= head.len() + tail.len() && number.starts_with(head) && number.ends_with(tail)
        }
    }
}

fn sip_addr(address: SocketAddr, transport: DeviceTransport) -> SipAddr {
    let transport = match transport {
        DeviceTransport::Tcp => Transport::Tcp,
        DeviceTransport::Udp => Transport::Udp,
    };
    SipAddr {
        r#type: Some(transport),
        addr: HostWithPort::from(address),
    }
}

/// The route to a target the runtime resolved.
pub fn outgoing(shared: &SipShared, target: &Target) -> Result<Route, CallError> {
    match target {
        Target::Device(device) => Ok(Route {
            request_uri: device.contact.clone(),
            destination: device.address.map(|address| sip_addr(address, device.transport)),
            credential: None,
            trunk: None,
        }),
        Target::Number(number) => trunk(shared, number),
        Target::Address(address) => Ok(Route {
            request_uri: format!("sip:{}", address.trim_start_matches("sip:")),
            destination: None,
            credential: None,
            trunk: None,
        }),
    }
}

/// The first trunk (by name) that carries `number`.
fn trunk(shared: &SipShared, number: &str) -> Result<Route, CallError> {
    let (name, trunk) = shared
        .config
        .trunks
        .iter()
        .find(|(_, trunk)| {
            trunk.numbers.is_empty() || trunk.numbers.iter().any(|pattern| matches(pattern, number))
        })
        .ok_or_else(|| CallError::new(Status::NOT_FOUND, format!("no trunk carries {number}")))?;
    let host = trunk
        .domain
        .clone()
        .unwrap_or_else(|| trunk.proxy.split(':').next().unwrap_or(&trunk.proxy).to_string());
    let destination = trunk
        .proxy
        .parse::<SocketAddr>()
        .ok()
        .map(|address| sip_addr(address, DeviceTransport::Udp));
    let credential = trunk.username.as_ref().map(|username| Credential {
        username: username.clone(),
        password: trunk.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: None,
    });
    tracing::debug!(trunk = %name, %number, "outgoing call through a trunk");
    Ok(Route {
        request_uri: format!("sip:{number}@{host}"),
        destination,
        credential,
        trunk: Some(name.clone()),
    })
}

/// The Refer-To of a blind transfer to `target`: an account's address at
/// this server (the peer calls pbxd, which rings it), or a SIP address.
pub fn refer_target(shared: &SipShared, target: &Destination) -> String {
    let server = crate::server::host_port(shared.advertise, shared.listen.port());
    match target {
        Destination::Account { account, .. } => format!("sip:{}@{server}", account.name),
        Destination::App { app, account, .. } => format!("sip:{}%23{}@{server}", app, account.name),
        Destination::Outside(number) if !number.contains('@') => format!("sip:{number}@{server}"),
        Destination::Outside(address) => format!("sip:{}", address.trim_start_matches("sip:")),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn number_patterns() {
        assert!(matches("8*", "84951234567"));
        assert!(matches("+7*", "+74951234567"));
        assert!(matches("*", "1"));
        assert!(!matches("8*", "74951234567"));
        assert!(matches("112", "112"));
        assert!(!matches("112", "1120"));
    }
}
