//! JSON schemas of the served kinds.
