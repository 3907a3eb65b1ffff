//! cdnwatch: probes CDN domains from every region and resolver, and decides which ones clients may use.
//!
//! Module map: `config` (the typed TOML file), `model` (shared vocabulary), `trust` (CA stores),
//! `probe` (one probe, a file per phase), `lab` (the simulated CDN on loopback).

pub mod config;
pub mod model;
pub mod trust;
