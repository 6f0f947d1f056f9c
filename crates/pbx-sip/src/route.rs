//! Where an outgoing call goes: an account's registered device (to the
//! address its REGISTER came from, so phones behind NAT are reached), a
//! trunk for numbers beyond the server, or a SIP address elsewhere.

use std::net::SocketAddr;

use pbx_runtime::address::{self, Destination};
use pbx_runtime::Runtime;
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

fn sip_addr(address: SocketAddr, transport: &str) -> SipAddr {
    let transport = if transport.eq_ignore_ascii_case("tcp") {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    SipAddr {
        r#type: Some(transport),
        addr: HostWithPort::from(address),
    }
}

/// Decides the route to `to` (an address or a number, as a script gives it).
pub fn outgoing(shared: &SipShared, runtime: &Runtime, to: &str) -> Result<Route, String> {
    let text = to.trim().trim_start_matches("sip:");
    let default_domain = runtime.directory.first_domain().map(|domain| domain.name.clone());
    match address::resolve(&runtime.directory, text, default_domain.as_deref(), None) {
        Ok(Destination::Account { account, .. }) => {
            let bindings = shared
                .location
                .lookup(&account.address())
                .map_err(|error| format!("500 Server Internal Error ({error})"))?;
            let binding = bindings
                .first()
                .ok_or_else(|| "480 Temporarily Unavailable".to_string())?;
            Ok(Route {
                request_uri: binding.contact.clone(),
                destination: Some(sip_addr(binding.source, &binding.transport)),
                credential: None,
            })
        }
        Ok(Destination::Outside(number)) if !number.contains('@') => trunk(shared, &number),
        Ok(Destination::Outside(address)) => Ok(Route {
            request_uri: format!("sip:{address}"),
            destination: None,
            credential: None,
        }),
        Ok(Destination::App { app, .. }) => Err(format!("404 Not Found (#{app} is an application)")),
        Err(error) => Err(format!("404 Not Found ({error})")),
    }
}

/// The first trunk (by name) that carries `number`.
fn trunk(shared: &SipShared, number: &str) -> Result<Route, String> {
    let (name, trunk) = shared
        .config
        .trunks
        .iter()
        .find(|(_, trunk)| {
            trunk.numbers.is_empty() || trunk.numbers.iter().any(|pattern| matches(pattern, number))
        })
        .ok_or_else(|| format!("404 Not Found (no trunk carries {number})"))?;
    let host = trunk
        .domain
        .clone()
        .unwrap_or_else(|| trunk.proxy.split(':').next().unwrap_or(&trunk.proxy).to_string());
    let destination = trunk
        .proxy
        .parse::<SocketAddr>()
        .ok()
        .map(|address| sip_addr(address, "udp"));
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
    })
}

/// The Refer-To of a blind transfer to `target`: an account's address at
/// this server (the peer calls pbxd, which rings it), or a SIP address.
pub fn refer_target(shared: &SipShared, runtime: &Runtime, target: &str) -> Option<String> {
    let text = target.trim().trim_start_matches("sip:");
    let default_domain = runtime.directory.first_domain().map(|domain| domain.name.clone());
    let server = crate::server::host_port(shared.advertise, shared.listen.port());
    match address::resolve(&runtime.directory, text, default_domain.as_deref(), None) {
        Ok(Destination::Account { account, .. }) => Some(format!("sip:{}@{server}", account.name)),
        Ok(Destination::App { app, account, .. }) => Some(format!("sip:{}%23{}@{server}", app, account.name)),
        Ok(Destination::Outside(number)) if !number.contains('@') => Some(format!("sip:{number}@{server}")),
        Ok(Destination::Outside(address)) => Some(format!("sip:{address}")),
        Err(_) => None,
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
