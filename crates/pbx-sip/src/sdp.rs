//! SDP offer/answer for audio calls (RFC 3264, RFC 4566).
