//! Telling on-call: each incident state change becomes a [`Notice`] (opened, widened, a decision
//! published for it, resolved, reopened); the notices of a round are routed to their channels and
//! recorded in the outbox in the same transaction as the incidents, then sent by the dispatcher,
//! grouped per channel within a short window, at each receiver's published rate, retried with
//! backoff, and shown as failed past a bound. Built on incidents, never on single probes or hosts:
//! a vendor failing on 200 hosts is one incident, so a handful of messages.
//!
//! Layout: `notice` what a change says (made from the tracker's new timeline entries); `route`
//! which channels a notice goes to; `silence` which notices a silence or maintenance window mutes; `channels` what each robot and the webhook get and how their
//! answers read; `alertmanager` the v2 push; `dispatch` the senders (each POST through `crate::outbound`).

pub mod alertmanager;
pub mod channels;
pub mod dispatch;
pub mod notice;
pub mod route;
pub mod silence;

pub use notice::{Change, Notice};
