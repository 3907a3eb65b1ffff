//! The engine with confirmations: a series' failed confirmations count as failed rounds, within a
//! round or between two (amending the newest), and never speed up coming back.

use super::*;

/// `r` with every failed result's series at `n` failed confirmations.
fn confirmed(mut r: Round, n: u32) -> Round {
    for o in r.regions.iter_mut().flat_map(|r| r.observations.iter_mut()) {
        if o.cdn_failure() {
            o.confirmations = n;
        }
    }
    r
}

#[test]
fn fall_rounds_failed_confirmations_disable_a_vendor_in_its_first_failed_round() {
    let mut en = engine();
    en.evaluate(&round(ok, &[]), &[], t(0));
    let e = en.evaluate(&confirmed(round(alpha_502, &[]), 2), &[], t(10));
    assert!(!e.changed, "two confirmations are not yet a fall");
    let mut en = engine();
    en.evaluate(&round(ok, &[]), &[], t(0));
    let e = en.evaluate(&confirmed(round(alpha_502, &[]), 3), &[], t(10));
    assert!(e.changed);
    assert_eq!(enabled(&e), [false, false, true]);
    assert_eq!(e.hosts["cdn"].reason, Some(Reason::VendorWide));
}

#[test]
fn confirmations_between_two_rounds_complete_the_fall_without_adding_a_round() {
    let mut en = engine();
    en.evaluate(&round(ok, &[]), &[], t(0));
    for (n, at) in [(0, 11), (1, 12), (2, 14)] {
        let e = en.evaluate_confirmations(&confirmed(round(alpha_502, &[]), n), &[], t(at));
        assert!(!e.changed, "{n} confirmations flip nothing");
    }
    let e = en.evaluate_confirmations(&confirmed(round(alpha_502, &[]), 3), &[], t(16));
    assert_eq!(enabled(&e), [false, false, true]);
    // One round was amended, none added: two more regular failed rounds are not a third.
    let mut other = engine();
    other.evaluate(&round(ok, &[]), &[], t(0));
    other.evaluate_confirmations(&confirmed(round(alpha_502, &[]), 1), &[], t(5));
    let e = other.evaluate(&round(alpha_502, &[]), &[], t(10));
    assert!(
        !e.changed,
        "an amended round and one failed round are two, not three"
    );
    let e = other.evaluate(&round(alpha_502, &[]), &[], t(20));
    assert!(e.changed, "the third failed round is the fall");
}

#[test]
fn confirmations_of_a_minority_of_a_regions_results_do_not_count() {
    let mut en = engine();
    en.evaluate(&round(ok, &[]), &[], t(0));
    // Alpha fails everywhere, but only its image path's series (4 results in 12) are confirmed.
    let mut r = round(alpha_502, &[]);
    for o in r.regions.iter_mut().flat_map(|r| r.observations.iter_mut()) {
        if o.cdn_failure() && o.path == PATHS[0] {
            o.confirmations = 3;
        }
    }
    let e = en.evaluate_confirmations(&r, &[], t(5));
    assert_eq!(enabled(&e), [true, true, true]);
    let e = en.evaluate(&r, &[], t(10));
    assert_eq!(enabled(&e), [true, true, true], "one failed round, no fall");
}

#[test]
fn confirmation_evaluations_add_no_ok_rounds_so_coming_back_is_unchanged() {
    let run = |confirm_ticks: bool| {
        // No hold: coming back is rise_rounds ok rounds alone.
        let mut en = engine();
        en.policy.hold_base_ms = 0;
        en.evaluate(&round(ok, &[]), &[], t(0));
        let e = en.evaluate(&confirmed(round(alpha_502, &[]), 3), &[], t(10));
        assert_eq!(enabled(&e), [false, false, true]);
        let mut back = None;
        for i in 2..40 {
            if confirm_ticks {
                for k in 1..4 {
                    en.evaluate_confirmations(&round(ok, &[]), &[], t(i * 10 - 10 + 2 * k));
                }
            }
            let e = en.evaluate(&round(ok, &[]), &[], t(i * 10));
            if e.hosts["cdn"].enabled {
                back = Some(i);
                break;
            }
        }
        back
    };
    let plain = run(false);
    assert!(plain.is_some(), "the vendor comes back after the hold");
    assert_eq!(run(true), plain);
}
