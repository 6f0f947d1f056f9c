//! SIP digest authentication, server side (RFC 7616, RFC 2617).
