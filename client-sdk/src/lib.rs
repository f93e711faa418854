//! Ingrid client SDK.
