//! Where an outgoing call goes: an account's registered device (to the
//! address its REGISTER came from, so phones behind NAT are reached), the
//! trunks for numbers beyond the server (the first, and those to fail
//! over to: `trunk`), or a SIP address elsewhere.

use std::net::SocketAddr;

use pbx_runtime::address::Destination;
use pbx_runtime::call::{CallError, Status, Target, Transport as DeviceTransport};
use pbx_runtime::config::TrunkConfig;
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
    /// The To header's URI and display name when they are not the
    /// Request-URI's: a phone is called at its Contact, and shown the
    /// account (or virtual line) called.
    pub to: Option<(String, Option<String>)>,
}

fn sip_addr(address: SocketAddr, transport: DeviceTransport) -> SipAddr {
    let transport = match transport {
        DeviceTransport::Tcp => Transport::Tcp,
        DeviceTransport::Tls => Transport::Tls,
        DeviceTransport::Udp => Transport::Udp,
    };
    SipAddr {
        r#type: Some(transport),
        addr: HostWithPort::from(address),
    }
}

/// Where an outgoing call goes first, and, for a number, the trunks to
/// fail over to after it.
pub struct Routes {
    pub first: Route,
    pub next: Vec<Route>,
}

impl From<Route> for Routes {
    fn from(first: Route) -> Routes {
        Routes {
            first,
            next: Vec::new(),
        }
    }
}

/// The routes to a target the runtime resolved.
pub fn outgoing(shared: &SipShared, target: &Target) -> Result<Routes, CallError> {
    match target {
        Target::Device(device) => Ok(Route {
            request_uri: device.contact.clone(),
            destination: device.address.map(|address| sip_addr(address, device.transport)),
            credential: None,
            trunk: None,
            // A virtual line rung on a phone it is logged in on shows its
            // name, so the phone's user knows which line is called.
            to: Some((
                format!("sip:{}", device.account),
                device.via.as_ref().map(|_| {
                    device
                        .account
                        .split('@')
                        .next()
                        .unwrap_or(&device.account)
                        .to_string()
                }),
            )),
        }
        .into()),
        Target::Number(number) => trunks(shared, number),
        Target::Address(address) => Ok(Route {
            request_uri: format!("sip:{}", address.trim_start_matches("sip:")),
            destination: None,
            credential: None,
            trunk: None,
            to: None,
        }
        .into()),
    }
}

/// The trunks (by name) that carry `number` and are up; when every one
/// that carries it is down, all of them (better tried than not at all).
fn trunks(shared: &SipShared, number: &str) -> Result<Routes, CallError> {
    let carrying: Vec<(&String, &TrunkConfig)> = shared
        .config
        .trunks
        .iter()
        .filter(|(_, trunk)| trunk.carries(number))
        .collect();
    let up: Vec<(&String, &TrunkConfig)> = carrying
        .iter()
        .copied()
        .filter(|(name, _)| shared.trunks.is_up(name))
        .collect();
    let chosen = if up.is_empty() { carrying } else { up };
    let mut routes = chosen
        .into_iter()
        .map(|(name, trunk)| trunk_route(shared, name, trunk, number));
    let first = routes
        .next()
        .ok_or_else(|| CallError::new(Status::NOT_FOUND, format!("no trunk carries {number}")))?;
    Ok(Routes {
        first,
        next: routes.collect(),
    })
}

/// The route to `number` through trunk `name`: the number as the trunk
/// wants it (its `outgoing` rules), its proxy, its credentials.
fn trunk_route(shared: &SipShared, name: &str, trunk: &TrunkConfig, number: &str) -> Route {
    let host = trunk
        .domain
        .clone()
        .unwrap_or_else(|| trunk.proxy.split(':').next().unwrap_or(&trunk.proxy).to_string());
    let destination = shared
        .trunks
        .address(name)
        .map(|address| sip_addr(address, DeviceTransport::Udp));
    let credential = trunk.username.as_ref().map(|username| Credential {
        username: username.clone(),
        password: trunk.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: None,
    });
    let sent = trunk.outgoing_number(number);
    Route {
        request_uri: format!("sip:{sent}@{host}"),
        destination,
        credential,
        trunk: Some(name.to_string()),
        to: None,
    }
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
