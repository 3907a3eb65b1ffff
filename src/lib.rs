//! cdnwatch: probes CDN domains from every region and resolver, and decides which ones clients may use.
//!
//! Module map: `config` (the typed TOML file), `model` (shared vocabulary), `trust` (CA stores),
//! `probe` (one probe, a file per phase), `metrics` (everything `/metrics` exports), `lab` (the simulated CDN on loopback), `report` (terminal
//! output), `app` (the commands), `demo` (lab + prober in one process).

pub mod app;
pub mod auth;
pub mod client;
pub mod config;
pub mod control;
pub mod decider;
pub mod demo;
pub mod engine;
pub mod hist;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod period;
pub mod probe;
pub mod publish;
pub mod report;
pub mod scheduler;
pub mod series;
pub mod service;
pub mod store;
pub mod trust;
pub mod web;
