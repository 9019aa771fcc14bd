//! Audit policy: presets, strict decoding, upstream validation, lints.
