//! The engine against a broken merged path prefix (the article, section 6): the merge rolled back
//! while the original domain serves, the failing vendor left when it does not, only raised when
//! the prefix fails everywhere, each as `path_fault` chooses; and a rollback kept across a restart.

use super::*;

const ORIGINAL: &str = "image.test";

fn alpha_image(host: &str, path: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
    (host != "cdn-bak" && path.starts_with("/image/")).then_some((F::ContentMismatch, Some(200)))
}

fn image_everywhere(_: &str, path: &str, _: &str, _: &str, _: u8) -> Option<(F, Option<u16>)> {
    path.starts_with("/image/")
        .then_some((F::ContentMismatch, Some(200)))
}

/// `fault`'s round, with the original domain's results (failing when `original_fails`).
fn merged_round(fault: Fault, original_fails: bool) -> Round {
    let mut r = round(fault, &[]);
    for region in &mut r.regions {
        for resolver in ["isp", "public"] {
            region.observations.push(Observation {
                host: ORIGINAL.into(),
                path: "/p.jpg".into(),
                resolver: resolver.into(),
                edge: Some("127.23.1.1".parse().unwrap()),
                class: original_fails.then_some(F::HttpStatus),
                status: Some(if original_fails { 502 } else { 200 }),
                phase: None,
                confirmations: 0,
            });
        }
    }
    r
}

fn merged_engine(path_fault: PathFault) -> Engine {
    let mut en = engine().with_merges(vec![MergeInfo {
        host: ORIGINAL.into(),
        prefix: "/image".into(),
    }]);
    en.policy.path_fault = path_fault;
    en
}

/// Runs `n` rounds of `fault` 10 s apart from `start`; the last evaluation.
fn run(en: &mut Engine, fault: Fault, original_fails: bool, start: i64, n: i64) -> Evaluation {
    let mut last = None;
    for i in 0..n {
        let round = merged_round(fault, original_fails);
        last = Some(en.evaluate(&round, &[], t(start + i * 10)));
    }
    last.expect("at least one round")
}

fn has(e: &Evaluation, reason: Reason) -> bool {
    e.events.iter().any(|ev| ev.reason == reason)
}

#[test]
fn a_prefix_broken_on_one_vendor_with_its_original_serving_is_rolled_back_then_restored() {
    let mut en = merged_engine(PathFault::LeastTraffic);
    let e = run(&mut en, alpha_image, false, 0, 2);
    assert!(e.rolled_back.is_empty(), "not before fall_rounds");
    let e = run(&mut en, alpha_image, false, 20, 1);
    assert_eq!(e.rolled_back, BTreeSet::from(["/image".to_string()]));
    assert!(has(&e, Reason::MergeRollback), "{:?}", reasons(&e));
    assert_eq!(enabled(&e), [true, true, true], "no host is flipped");
    // Healthy again: rise_rounds are not enough while the 60 s hold from the last failure runs.
    let e = run(&mut en, ok, false, 30, 3);
    assert!(!e.rolled_back.is_empty(), "the hold still runs");
    let e = run(&mut en, ok, false, 60, 3);
    assert!(e.rolled_back.is_empty(), "{:?}", reasons(&e));
    assert!(has(&e, Reason::MergeRestore));
}

#[test]
fn a_prefix_broken_on_one_vendor_and_on_its_original_leaves_that_vendor() {
    let mut en = merged_engine(PathFault::LeastTraffic);
    let e = run(&mut en, alpha_image, true, 0, 3);
    assert!(e.rolled_back.is_empty());
    assert_eq!(enabled(&e), [false, false, true]);
    assert_eq!(e.hosts["cdn"].reason, Some(Reason::PrefixVendor));
    // The hosts stay out while the prefix fails, past their own hold.
    let e = run(&mut en, alpha_image, true, 30, 10);
    assert_eq!(enabled(&e), [false, false, true]);
    let e = run(&mut en, ok, true, 130, 4);
    assert_eq!(enabled(&e), [true, true, true], "{:?}", reasons(&e));
}

#[test]
fn a_prefix_broken_everywhere_original_included_flips_nothing() {
    let mut en = merged_engine(PathFault::LeastTraffic);
    let e = run(&mut en, image_everywhere, true, 0, 6);
    assert!(e.rolled_back.is_empty());
    assert_eq!(enabled(&e), [true, true, true]);
    // The article's own case: the unified origin's copy is bad on every vendor, the original
    // serves: rolled back.
    let mut en = merged_engine(PathFault::LeastTraffic);
    let e = run(&mut en, image_everywhere, false, 0, 3);
    assert_eq!(e.rolled_back.len(), 1);
}

#[test]
fn path_fault_chooses_what_a_broken_prefix_makes_the_engine_do() {
    let mut en = merged_engine(PathFault::Raise);
    let e = run(&mut en, alpha_image, false, 0, 6);
    assert!(e.rolled_back.is_empty() && enabled(&e) == [true, true, true]);
    let mut en = merged_engine(PathFault::RollbackMerge);
    let e = run(&mut en, alpha_image, true, 0, 6);
    assert!(e.rolled_back.is_empty() && enabled(&e) == [true, true, true]);
    let mut en = merged_engine(PathFault::DisableVendor);
    let e = run(&mut en, alpha_image, false, 0, 3);
    assert!(e.rolled_back.is_empty());
    assert_eq!(enabled(&e), [false, false, true]);
}

#[test]
fn a_rollback_is_kept_in_the_memory_and_from_the_published_document() {
    let mut en = merged_engine(PathFault::LeastTraffic);
    run(&mut en, alpha_image, false, 0, 3);
    let memory = en.memory();
    let mut next = merged_engine(PathFault::LeastTraffic);
    next.recall(memory, false);
    let e = run(&mut next, alpha_image, false, 30, 1);
    assert_eq!(e.rolled_back.len(), 1);
    assert!(!has(&e, Reason::MergeRollback), "not rolled back twice");
    let mut cold = merged_engine(PathFault::LeastTraffic);
    cold.restore_rollbacks(&BTreeSet::from(["/image".to_string()]));
    let e = run(&mut cold, alpha_image, false, 0, 1);
    assert_eq!(e.rolled_back.len(), 1);
}
