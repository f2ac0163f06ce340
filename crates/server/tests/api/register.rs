//! `POST /oauth/register` (RFC 7591).
