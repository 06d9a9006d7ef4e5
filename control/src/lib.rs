//! The wasmpod control plane: the Kubernetes-compatible API server over a
//! generic object store (SQLite or Postgres), and what runs beside it.

pub mod apiserver;
pub mod auth;
pub mod bootstrap;
pub mod controllers;
pub mod modules;
pub mod scheduler;
pub mod server;
pub mod store;
