//! The wasmpod control plane.
