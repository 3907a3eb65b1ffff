//! What cdnwatch must do, as seen from outside: every test here crosses a socket or runs the real
//! binary, on loopback only. One integration-test crate, one module per capability; each test's
//! name is a sentence that must hold. Everything is started through [`harness`]: a lab on
//! loopback ([`harness::TestLab`]), the service on it on port 0 ([`harness::TestApp`]), cdnwatch
//! processes, a real Prometheus and a headless Chromium. A test whose timings or memory are
//! asserted has the machine to itself ([`harness::alone`]); the others share it. A test whose time
//! goes into probe rounds, decisions and holds runs the service on a stepped clock
//! ([`harness::TestApp::stepped_with`]): it runs the rounds it needs instead of waiting for them.
//!
//! | module | what it specifies |
//! |---|---|
//! | [`failure_classes`] | every failure class comes from a real lab fault, in its phase, within its scope |
//! | [`hostile_peers`] | a hostile DNS, TCP or HTTP peer ends each probe within its timeout or cap |
//! | [`scheduler`] | series spread over the interval, keep their rhythm, never overlap, stay bounded |
//! | [`decisions_hold`] | overrides work frozen, the engine's memory outlives a restart, the document never lapses, keys rotate |
//! | [`deploy`] | the systemd units in `deploy/` pass `systemd-analyze verify` and pass only flags the CLI has |
//! | [`diagnosis`] | each lab fault named once, by the smallest scope that explains it |
//! | [`notify`] | incidents told to a real Alertmanager and to the robots, once, through the outbox |
//! | [`incidents`] | one fault is one incident: API, pages, metric, resolution, restart and kill -9 |
//! | [`merge_rollback`] | a broken merged prefix rolled back while its original serves, its vendor left when not, nothing flipped when it fails everywhere |
//! | [`failover`] | outages move clients by the published list; regions, fail-open, restarts |
//! | [`confirm`] | a failed series is confirmed at once; a vendor outage is out in about one interval |
//! | [`api`] | the host-list API: caching, signatures, long polls, overrides, agents, 4xx errors |
//! | [`public_face`] | the HTTP edge: slow and idle clients closed, caps held, two listeners, Host and metrics gates |
//! | [`wire`] | the host-list fast path answers as hyper does, in order across the hand-over, within the timeouts |
//! | [`console`] | the config page's sign-in, session cookie, CSRF and same-origin protection |
//! | [`guards`] | bodies read only for the right token, attempts limited, cheap public reads, config bounds |
//! | [`dashboard`] | the on-call pages show a lab fault where it belongs; bad input gets a 4xx page |
//! | [`browser`] | every page in a real Chromium, with no console error; the override form by hand |
//! | [`metrics`] | `/metrics` passes promtool, a real Prometheus scrapes it, the alerts and dashboard fit |
//! | [`check_config`] | `cdnwatch check-config` names every problem with its line and column |
//! | [`lab_cli`] | `cdnwatch lab`, `lab fault …`, `probe` and `demo` as an engineer runs them |
//! | [`silences`] | a silence mutes what it matches and nothing else, the engine still decides, never a fail-open |
//! | [`robots`] | each chat robot accepts our signed messages, refuses a wrong secret or token, throttles past its rate |
//! | [`storm`] | 200 hosts of one vendor failing are at most 3 messages per robot in five minutes, none throttled, every host named or counted |
//! | [`results`] | what an agent posts is stored, counted and decided on like local results |
//! | [`agents_page`] | the agents on `/agents`, the overview's "no agent" cells, the agents on `/metrics` |
//! | [`serve_process`] | `cdnwatch serve` as a process: status, SIGHUP, SIGTERM, kill -9 |
//! | [`phase_timing`] | an injected delay is timed in its own phase within 2 ms; a slow body as transfer |
//! | [`timeouts`] | a phase a timeout ends records the time it waited, in the total, histograms, store and pages |

// A test is a specification, read top to bottom: its length is the behaviour it pins down.
#![allow(clippy::too_many_lines)]

// A test crate exports nothing: `pub` in the harness means "for the tests", not "for the world".
#[allow(unreachable_pub)]
mod harness;

mod agents;
mod agents_page;
mod api;
mod browser;
mod check_config;
mod confirm;
mod console;
mod dashboard;
mod decisions_hold;
mod deploy;
mod diagnosis;
mod failover;
mod failure_classes;
mod guards;
mod hostile_peers;
mod incidents;
mod lab_cli;
mod merge_rollback;
mod metrics;
mod notify;
mod phase_timing;
mod public_face;
mod results;
mod robots;
mod scheduler;
mod serve_process;
mod silences;
mod storm;
mod timeouts;
mod wire;
