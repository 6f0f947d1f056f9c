//! SIP status codes as the runtime sees them: what a leg is refused or
//! ended with, and why an outgoing call failed.

use std::borrow::Cow;
use std::fmt;

/// A final or provisional response: a code and its reason phrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: u16,
    reason: Cow<'static, str>,
}

macro_rules! statuses {
    ($($name:ident = $code:literal $reason:literal;)*) => {
        impl Status {
            $(
                #[doc = concat!("`", stringify!($code), " ", $reason, "`")]
                pub const $name: Status = Status { code: $code, reason: Cow::Borrowed($reason) };
            )*

            /// The usual reason phrase of `code` (RFC 3261 §21).
            pub fn standard_reason(code: u16) -> &'static str {
                match code {
                    $($code => $reason,)*
                    100..=199 => "Session Progress",
                    200..=299 => "OK",
                    300..=399 => "Redirection",
                    400..=499 => "Request Failure",
                    500..=599 => "Server Failure",
                    _ => "Global Failure",
                }
            }
        }
    };
}

statuses! {
    TRYING = 100 "Trying";
    RINGING = 180 "Ringing";
    SESSION_PROGRESS = 183 "Session Progress";
    MOVED_TEMPORARILY = 302 "Moved Temporarily";
    BAD_REQUEST = 400 "Bad Request";
    UNAUTHORIZED = 401 "Unauthorized";
    FORBIDDEN = 403 "Forbidden";
    NOT_FOUND = 404 "Not Found";
    METHOD_NOT_ALLOWED = 405 "Method Not Allowed";
    PROXY_AUTHENTICATION_REQUIRED = 407 "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408 "Request Timeout";
    GONE = 410 "Gone";
    TEMPORARILY_UNAVAILABLE = 480 "Temporarily Unavailable";
    CALL_DOES_NOT_EXIST = 481 "Call/Transaction Does Not Exist";
    LOOP_DETECTED = 482 "Loop Detected";
    ADDRESS_INCOMPLETE = 484 "Address Incomplete";
    BUSY_HERE = 486 "Busy Here";
    REQUEST_TERMINATED = 487 "Request Terminated";
    NOT_ACCEPTABLE_HERE = 488 "Not Acceptable Here";
    SERVER_INTERNAL_ERROR = 500 "Server Internal Error";
    NOT_IMPLEMENTED = 501 "Not Implemented";
    BAD_GATEWAY = 502 "Bad Gateway";
    SERVICE_UNAVAILABLE = 503 "Service Unavailable";
    SERVER_TIMEOUT = 504 "Server Time-out";
    BUSY_EVERYWHERE = 600 "Busy Everywhere";
    DECLINE = 603 "Decline";
    DOES_NOT_EXIST_ANYWHERE = 604 "Does Not Exist Anywhere";
    NOT_ACCEPTABLE = 606 "Not Acceptable";
}

impl Status {
    /// `code` with its usual reason phrase. Codes outside 100–699 become 500.
    pub fn new(code: u16) -> Status {
        let code = if (100..700).contains(&code) { code } else { 500 };
        Status {
            code,
            reason: Cow::Borrowed(Status::standard_reason(code)),
        }
    }

    /// `code` with a reason phrase of its own (a script's `RejectCall(603,
    /// "Not today")`). Codes outside 100–699 become 500.
    pub fn with_reason(code: u16, reason: impl Into<String>) -> Status {
        let mut status = Status::new(code);
        let reason: String = reason.into();
        if !reason.trim().is_empty() {
            status.reason = Cow::Owned(reason);
        }
        status
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// 486 or 600: the called party is busy (busy rules apply).
    pub fn is_busy(&self) -> bool {
        matches!(self.code, 486 | 600)
    }

    /// A final response (200 and above).
    pub fn is_final(&self) -> bool {
        self.code >= 200
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// Why an outgoing call could not be placed or did not connect: a status,
/// and what pbxd knows beyond it. Scripts see it as text
/// (`404 Not Found (no trunk carries 8495...)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub status: Status,
    pub detail: Option<String>,
}

impl CallError {
    /// `status` with a detail.
    pub fn new(status: Status, detail: impl Into<String>) -> CallError {
        CallError {
            status,
            detail: Some(detail.into()),
        }
    }
}

impl From<Status> for CallError {
    fn from(status: Status) -> CallError {
        CallError { status, detail: None }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{} ({detail})", self.status),
            None => self.status.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_with_their_reasons() {
        assert_eq!(Status::new(486).to_string(), "486 Busy Here");
        assert_eq!(Status::new(499).to_string(), "499 Request Failure");
        assert_eq!(Status::new(42).code(), 500);
        assert_eq!(Status::with_reason(603, "Not today").to_string(), "603 Not today");
        assert_eq!(Status::with_reason(603, " ").to_string(), "603 Decline");
        assert!(Status::BUSY_EVERYWHERE.is_busy());
        assert_eq!(
            CallError::new(Status::NOT_FOUND, "no trunk carries 8495").to_string(),
            "404 Not Found (no trunk carries 8495)"
        );
    }
}
