//! The wasmpod node daemon: joins a cluster and runs the pods bound to it.
pub mod agent;
pub mod network;
pub mod runtime;
